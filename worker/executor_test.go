package worker

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks"
	"github.com/sfblocks/sfblocks/blocks/salesforce"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

// fakeAPI is an in-memory Salesforce: Query returns one Contact unless the
// statement mentions "Nobody", Create returns a new id.
type fakeAPI struct{}

func (fakeAPI) Query(_ context.Context, soql string, _ ...salesforce.QueryOption) (*salesforce.QueryResult, error) {
	if strings.Contains(soql, "Nobody") {
		return &salesforce.QueryResult{Done: true}, nil
	}
	return &salesforce.QueryResult{TotalSize: 1, Done: true, Records: []salesforce.Record{{
		"attributes": map[string]any{"type": "Contact", "url": "/services/data/v62.0/sobjects/Contact/003000000000001AAA"},
		"Id":         "003000000000001AAA", "LastName": "Doe",
	}}}, nil
}

func (fakeAPI) Search(context.Context, string) (*salesforce.SearchResult, error) {
	return &salesforce.SearchResult{}, nil
}

func (fakeAPI) Create(context.Context, string, map[string]any) (*salesforce.SaveResult, error) {
	return &salesforce.SaveResult{ID: "003000000000002AAA", Success: true, Created: true}, nil
}

func (fakeAPI) Upsert(context.Context, string, string, string, map[string]any) (*salesforce.SaveResult, error) {
	return &salesforce.SaveResult{ID: "003000000000003AAA", Success: true}, nil
}

// TestWithExecutor runs the real blocks.Executor behind the worker.
func TestWithExecutor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		subject    string
		payload    string
		wantStatus sfblocks.Status
		wantCode   sfblocks.Code
		wantHeader string
		wantID     string // "" : any non-empty id
		wantAcct   string
	}{
		{"malformed json", "sfblocks.search", `{"query": `, sfblocks.StatusFailed, sfblocks.CodeInvalidRequest, "400", "", ""},
		{"not an object", "sfblocks.insert", `[1,2]`, sfblocks.StatusFailed, sfblocks.CodeInvalidRequest, "400", "", ""},
		{"empty payload", "sfblocks.search", ``, sfblocks.StatusFailed, sfblocks.CodeInvalidRequest, "400", "", ""},
		{"unknown key keeps id", "sfblocks.search", `{"id":"k1","qurey":"SELECT Id FROM Contact"}`, sfblocks.StatusFailed, sfblocks.CodeInvalidRequest, "400", "k1", ""},
		{"unknown account", "sfblocks.search", `{"id":"a1","account":"nope","query":"SELECT Id FROM Contact"}`, sfblocks.StatusFailed, sfblocks.CodeUnknownAccount, "404", "a1", ""},
		{"search ok, id generated", "sfblocks.search", `{"query":"SELECT Id, LastName FROM Contact"}`, sfblocks.StatusOK, "", "", "", "main"},
		{"search no data", "sfblocks.search", `{"id":"n1","query":"SELECT Id FROM Contact WHERE LastName = 'Nobody'"}`, sfblocks.StatusNoData, "", "", "n1", "main"},
		{"insert ok", "sfblocks.insert", `{"id":"i1","object":"Contact","fields":{"LastName":"Doe"}}`, sfblocks.StatusOK, "", "", "i1", "main"},
	}
	exec, err := blocks.NewExecutor(blocks.StaticAccounts{Default: "main", Clients: map[string]blocks.SalesforceAPI{"main": fakeAPI{}}})
	if err != nil {
		t.Fatal(err)
	}
	s := workertest.StartNATS(t)
	startWorker(t, workertest.Connect(t, s), exec)
	nc := workertest.Connect(t, s)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg, err := nc.Request(tc.subject, []byte(tc.payload), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			var rep sfblocks.Reply
			if err := json.Unmarshal(msg.Data, &rep); err != nil {
				t.Fatalf("reply %q: %v", msg.Data, err)
			}
			if rep.Status != tc.wantStatus || rep.Attempt != 1 || rep.ID == "" {
				t.Errorf("reply = %s, want status %s, attempt 1, an id", msg.Data, tc.wantStatus)
			}
			if tc.wantID != "" && rep.ID != tc.wantID {
				t.Errorf("id = %q, want %q", rep.ID, tc.wantID)
			}
			if tc.wantAcct != "" && rep.Account != tc.wantAcct {
				t.Errorf("account = %q, want %q", rep.Account, tc.wantAcct)
			}
			var code sfblocks.Code
			if rep.Error != nil {
				code = rep.Error.Code
			}
			if code != tc.wantCode {
				t.Errorf("code = %q, want %q (%s)", code, tc.wantCode, msg.Data)
			}
			if got := msg.Header.Get(micro.ErrorCodeHeader); got != tc.wantHeader {
				t.Errorf("error code header = %q, want %q", got, tc.wantHeader)
			}
		})
	}
}
