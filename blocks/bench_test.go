package blocks

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks/salesforce"
)

var (
	benchSearchJob = []byte(`{"id":"call-0001","account":"main","timeout_ms":5000,
		"query":"SELECT Id, Name, Email, Account.Name FROM Contact WHERE (Phone = '$(ani)' OR MobilePhone = '$(ani)') AND LastName LIKE '$(last)%' AND CreatedDate > $(since) LIMIT $(n)",
		"variables":{"ani":"+1 415 555 0100","last":"O'Brien","since":"2024-01-01T00:00:00Z","n":5},"max_records":5}`)
	benchStructuredJob = []byte(`{"object":"Case","fields":["Id","CaseNumber","Subject","Contact.Name"],
		"where":[{"field":"Contact.Email","op":"=","value":"$(email)"},{"field":"Status","op":"IN","value":["New","Working"]},
		{"field":"ClosedDate","op":"empty"}],"order_by":"CreatedDate DESC","limit":20,"variables":{"email":"ada@example.com"}}`)
	benchInsertJob = []byte(`{"id":"call-0001-case","object":"Case",
		"fields":{"Subject":"Call from $(caller) about order $(order)","Origin":"Phone","Priority":"High","Description":null,"Score__c":"$(score)"},
		"variables":{"caller":"Ada Byron","order":"A-1001","score":7,"call":"c-77"},
		"external_id":{"field":"External_Id__c","value":"call-$(call)"}}`)
)

func benchDecode(b *testing.B, block sfblocks.Block, job []byte) {
	ex := newTestExecutor(b, nil)
	b.ReportAllocs()
	b.SetBytes(int64(len(job)))
	for b.Loop() {
		if _, err := ex.Decode(block, job); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeSearch is decoding and validating a templated search job,
// its statement built and escaped.
func BenchmarkDecodeSearch(b *testing.B) { benchDecode(b, sfblocks.Search, benchSearchJob) }

// BenchmarkDecodeStructured is the same for the structured form.
func BenchmarkDecodeStructured(b *testing.B) { benchDecode(b, sfblocks.Search, benchStructuredJob) }

// BenchmarkDecodeInsert is decoding and validating an upsert job.
func BenchmarkDecodeInsert(b *testing.B) { benchDecode(b, sfblocks.Insert, benchInsertJob) }

// BenchmarkRenderStatement is building and escaping a statement alone.
func BenchmarkRenderStatement(b *testing.B) {
	tmpl := "SELECT Id, Name FROM Contact WHERE (Phone = '$(ani)' OR MobilePhone = '$(ani)') AND LastName LIKE '$(last)%' AND CreatedDate > $(since) LIMIT $(n)"
	vs := map[string]variable{
		"ani":   {kind: varString, text: "+1 415 555 0100"},
		"last":  {kind: varString, text: "O'Brien_%"},
		"since": {kind: varString, text: "2024-01-01T00:00:00Z"},
		"n":     {kind: varNumber, text: "5"},
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := renderStatement(tmpl, false, vs); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeReply is encoding a search reply of 5 records.
func BenchmarkEncodeReply(b *testing.B) {
	recs := make([]map[string]any, 5)
	for i := range recs {
		recs[i] = map[string]any{"Id": "003000000000001AAA", "Name": "Ada Byron", "Email": "ada@example.com",
			"Account": map[string]any{"Name": "Acme Corporation"}}
	}
	n := len(recs)
	r := &sfblocks.Reply{ID: "call-0001", Account: "main", Status: sfblocks.StatusOK, Count: &n, Records: recs, First: recs[0], DurationMS: 12, Attempt: 1}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(r); err != nil {
			b.Fatal(err)
		}
	}
}

// cannedTransport answers every request with the same Salesforce query
// page, so a benchmark measures the client and not a network.
type cannedTransport struct{ body []byte }

func (c cannedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/json;charset=UTF-8"}, "Sforce-Limit-Info": {"api-usage=18/15000"}},
		Body:   io.NopCloser(bytes.NewReader(c.body)), ContentLength: int64(len(c.body)), Request: req}, nil
}

// BenchmarkSearchJob is one synchronous search as the worker runs it,
// without the network: decode and validate the job, run it through the
// Salesforce client (a canned one-record answer, as the bench's search
// gets), and encode the reply.
func BenchmarkSearchJob(b *testing.B) {
	page := []byte(`{"totalSize":1,"done":true,"records":[{"attributes":{"type":"Contact","url":"/services/data/v66.0/sobjects/Contact/003Hs000000001dIAA"},"Id":"003Hs000000001dIAA","Name":"Ada Byron"}]}`)
	c, err := salesforce.New(salesforce.StaticToken("token", "http://sf.example"),
		salesforce.WithHTTPClient(&http.Client{Transport: cannedTransport{page}}))
	if err != nil {
		b.Fatal(err)
	}
	ex := newTestExecutor(b, c)
	job := []byte(`{"query":"SELECT Id, Name FROM Contact WHERE Phone = '$(ANI)' LIMIT $(n)","variables":{"ANI":"+1 415 555 0100","n":17}}`)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		j, err := ex.Decode(sfblocks.Search, job)
		if err != nil {
			b.Fatal(err)
		}
		r := ex.Run(ctx, j)
		if r.Status != sfblocks.StatusOK {
			b.Fatalf("%+v", r.Error)
		}
		if _, err := json.Marshal(r); err != nil {
			b.Fatal(err)
		}
	}
}
