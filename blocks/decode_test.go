package blocks

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sfblocks/sfblocks"
)

func TestDecodeValidation(t *testing.T) {
	big := `{"query":"SELECT Id FROM Contact WHERE Name = '` + strings.Repeat("x", 2000) + `'"}`
	longQuery := `{"query":"SELECT Id FROM Contact WHERE Name = '` + strings.Repeat("x", MaxQueryChars) + `'"}`
	bigVar := `{"query":"SELECT Id FROM Contact WHERE Name = '$(v)'","variables":{"v":"` + strings.Repeat("x", MaxVariableBytes+1) + `"}}`
	manyFields := func() string {
		m := map[string]any{}
		for i := range MaxFields + 1 {
			m["F"+strconv.Itoa(i)+"__c"] = "x"
		}
		b, _ := json.Marshal(map[string]any{"object": "Contact", "fields": m})
		return string(b)
	}()
	tests := []struct {
		name    string
		block   sfblocks.Block
		given   string
		wantErr string
	}{
		{name: "size", block: sfblocks.Search, given: big, wantErr: "job is 2050 bytes; the limit is 1024 bytes"},
		{name: "invalid utf8", block: sfblocks.Search, given: "{\"query\":\"SELECT Id FROM Contact WHERE Name = '\xff'\"}", wantErr: "job is not valid UTF-8 (at byte 47)"},
		{name: "not an object", block: sfblocks.Search, given: `["SELECT"]`, wantErr: "job must be a JSON object"},
		{name: "null", block: sfblocks.Search, given: `null`, wantErr: "job must be a JSON object"},
		{name: "empty", block: sfblocks.Search, given: ``, wantErr: "job must be a JSON object"},
		{name: "syntax", block: sfblocks.Search, given: `{"query": "x",}`, wantErr: "job is not valid JSON at byte 15"},
		{name: "truncated", block: sfblocks.Search, given: `{"query": "x"`, wantErr: "job is not valid JSON: it ends too early"},
		{name: "trailing data", block: sfblocks.Search, given: `{"query":"SELECT Id FROM Contact"} {"x":1}`, wantErr: "job has data after its JSON object"},
		{name: "trailing garbage", block: sfblocks.Search, given: `{"query":"SELECT Id FROM Contact"}x`, wantErr: "job has data after its JSON object"},
		{name: "unknown key", block: sfblocks.Search, given: `{"query":"SELECT Id FROM Contact","qeury":"x"}`, wantErr: `unknown key "qeury" in the search job (it takes: id, account, timeout_ms, language, query, variables, max_records, object, fields, where, order_by, limit)`},
		{name: "unknown key insert", block: sfblocks.Insert, given: `{"object":"Contact","fields":{},"extid":1}`, wantErr: `unknown key "extid" in the insert job`},
		{name: "unknown nested key", block: sfblocks.Search, given: `{"object":"Contact","fields":["Id"],"where":[{"field":"Id","op":"=","value":"x","oops":1}]}`, wantErr: `unknown key "oops"`},
		{name: "max_records type", block: sfblocks.Search, given: `{"query":"SELECT Id FROM Contact","max_records":"10"}`, wantErr: `field "max_records" must be a whole number`},
		{name: "max_records fraction", block: sfblocks.Search, given: `{"query":"SELECT Id FROM Contact","max_records":1.5}`, wantErr: `field "max_records" must be a whole number`},
		{name: "max_records range", block: sfblocks.Search, given: `{"query":"SELECT Id FROM Contact","max_records":2001}`, wantErr: "max_records must be between 1 and 2000"},
		{name: "max_records negative", block: sfblocks.Search, given: `{"query":"SELECT Id FROM Contact","max_records":-1}`, wantErr: "max_records must be between 1 and 2000"},
		{name: "query type", block: sfblocks.Search, given: `{"query":5}`, wantErr: `field "query" must be a string`},
		{name: "fields type search", block: sfblocks.Search, given: `{"object":"Contact","fields":"Id"}`, wantErr: `field "fields" must be an array of strings`},
		{name: "fields element type", block: sfblocks.Search, given: `{"object":"Contact","fields":[1]}`, wantErr: `field "fields" must be an array of strings`},
		{name: "fields type insert", block: sfblocks.Insert, given: `{"object":"Contact","fields":["LastName"]}`, wantErr: `field "fields" must be an object of field values`},
		{name: "where op type", block: sfblocks.Search, given: `{"object":"Contact","fields":["Id"],"where":[{"field":"Id","op":1}]}`, wantErr: `field "where.op" must be a string`},
		{name: "external_id type", block: sfblocks.Insert, given: `{"object":"Contact","fields":{},"external_id":"x"}`, wantErr: `field "external_id" must be an object {"field","value"}`},
		{name: "variables type", block: sfblocks.Search, given: `{"query":"SELECT Id FROM Contact","variables":[1]}`, wantErr: `field "variables" must be an object of name: value`},
		{name: "variable value type", block: sfblocks.Search, given: `{"query":"SELECT Id FROM Contact","variables":{"a":{"b":1}}}`, wantErr: `variable "a" must be a string, number or boolean`},
		{name: "variable null", block: sfblocks.Search, given: `{"query":"SELECT Id FROM Contact","variables":{"a":null}}`, wantErr: `variable "a" must be a string, number or boolean`},
		{name: "variable name", block: sfblocks.Search, given: `{"query":"SELECT Id FROM Contact","variables":{"a b":"x"}}`, wantErr: `variable name "a b" is not valid`},
		{name: "variable size", block: sfblocks.Search, given: bigVar, wantErr: `variable "v" is 32769 bytes; the limit is 32768`},
		{name: "query length", block: sfblocks.Search, given: longQuery, wantErr: "query is 100038 characters; Salesforce's limit is 100000"},
		{name: "id too long", block: sfblocks.Search, given: `{"id":"` + strings.Repeat("i", 129) + `","query":"SELECT Id FROM Contact"}`, wantErr: "id is 129 bytes; the limit is 128"},
		{name: "id control char", block: sfblocks.Search, given: `{"id":"a\u0007b","query":"SELECT Id FROM Contact"}`, wantErr: "id must be printable text"},
		{name: "account control char", block: sfblocks.Search, given: `{"account":"a\nb","query":"SELECT Id FROM Contact"}`, wantErr: "account must be printable text"},
		{name: "timeout negative", block: sfblocks.Search, given: `{"timeout_ms":-5,"query":"SELECT Id FROM Contact"}`, wantErr: "timeout_ms must be positive"},
		{name: "timeout above max", block: sfblocks.Search, given: `{"timeout_ms":300001,"query":"SELECT Id FROM Contact"}`, wantErr: "timeout_ms 300001 is above the limit of 300000"},
		{name: "neither form", block: sfblocks.Search, given: `{"max_records":5}`, wantErr: "a search needs query"},
		{name: "both forms", block: sfblocks.Search, given: `{"query":"SELECT Id FROM Contact","object":"Contact"}`, wantErr: "give either query or the structured form"},
		{name: "language", block: sfblocks.Search, given: `{"language":"sql","query":"SELECT Id FROM Contact"}`, wantErr: "language must be soql or sosl"},
		{name: "sosl structured", block: sfblocks.Search, given: `{"language":"sosl","object":"Contact","fields":["Id"]}`, wantErr: "the structured form builds SOQL"},
		{name: "soql with FIND", block: sfblocks.Search, given: `{"query":"FIND {x}"}`, wantErr: "a FIND statement is SOSL; set language to sosl"},
		{name: "sosl with SELECT", block: sfblocks.Search, given: `{"language":"sosl","query":"SELECT Id FROM Contact"}`, wantErr: "a SOSL query starts with FIND"},
		{name: "soql other verb", block: sfblocks.Search, given: `{"query":"DELETE FROM Contact"}`, wantErr: "a SOQL query starts with SELECT"},

		{name: "insert no object", block: sfblocks.Insert, given: `{"fields":{"LastName":"x"}}`, wantErr: "object is required"},
		{name: "insert bad object", block: sfblocks.Insert, given: `{"object":"Contact/../Account","fields":{}}`, wantErr: `object "Contact/../Account" is not a valid API name`},
		{name: "insert no fields", block: sfblocks.Insert, given: `{"object":"Contact"}`, wantErr: "fields is required"},
		{name: "insert bad field name", block: sfblocks.Insert, given: `{"object":"Contact","fields":{"Last Name":"x"}}`, wantErr: `field name "Last Name" is not a valid API name`},
		{name: "insert Id", block: sfblocks.Insert, given: `{"object":"Contact","fields":{"id":"003"}}`, wantErr: "field Id cannot be set"},
		{name: "insert duplicate field", block: sfblocks.Insert, given: `{"object":"Contact","fields":{"LastName":"a","lastname":"b"}}`, wantErr: `is given twice`},
		{name: "insert object value", block: sfblocks.Insert, given: `{"object":"Contact","fields":{"LastName":{"a":1}}}`, wantErr: `field "LastName" must be a string, number, boolean or null`},
		{name: "insert exponent", block: sfblocks.Insert, given: `{"object":"Contact","fields":{"Age__c":1e3}}`, wantErr: `field "Age__c" must be a plain number`},
		{name: "insert too many fields", block: sfblocks.Insert, given: manyFields, wantErr: "fields has 201 entries; the limit is 200"},
		{name: "insert missing variable", block: sfblocks.Insert, given: `{"object":"Case","fields":{"Subject":"Call from $(caller)"}}`, wantErr: `field "Subject" uses variable "caller", which is not in variables`},
		{name: "insert bad external field", block: sfblocks.Insert, given: `{"object":"Contact","fields":{},"external_id":{"field":"Ext Id","value":"1"}}`, wantErr: `external_id.field "Ext Id" is not a valid API name`},
		{name: "insert empty external value", block: sfblocks.Insert, given: `{"object":"Contact","fields":{},"external_id":{"field":"External_Id__c","value":"$(e)"},"variables":{"e":""}}`, wantErr: "external_id.value is empty"},
		{name: "insert external id conflict", block: sfblocks.Insert, given: `{"object":"Contact","fields":{"External_Id__c":"B"},"external_id":{"field":"External_Id__c","value":"A"}}`, wantErr: `field "External_Id__c" is also external_id.field with another value`},
		{name: "unknown block", block: "delete", given: `{}`, wantErr: `unknown block "delete"; use search or insert`},
	}
	ex := newTestExecutor(t, nil, WithMaxJobBytes(1024))
	exBig := newTestExecutor(t, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := ex
			if len(tt.given) > 1024 && tt.name != "size" {
				e = exBig
			}
			job, err := e.Decode(tt.block, []byte(tt.given))
			if err == nil {
				t.Fatalf("Decode = %+v, want error %q", job, tt.wantErr)
			}
			var be *sfblocks.Error
			if !errors.As(err, &be) || be.Code != sfblocks.CodeInvalidRequest || be.Retryable {
				t.Fatalf("error %v is not a final INVALID_REQUEST *Error", err)
			}
			if !strings.Contains(be.Message, tt.wantErr) {
				t.Fatalf("message = %q\nwant it to contain %q", be.Message, tt.wantErr)
			}
		})
	}
}

func TestDecodeDefaultsAndInsertBody(t *testing.T) {
	ex := newTestExecutor(t, nil, WithDefaultTimeout(2*time.Second))
	job, err := ex.Decode(sfblocks.Search, []byte(`{"query":"SELECT Id FROM Contact"}`))
	if err != nil {
		t.Fatal(err)
	}
	if job.ID != "gen-1" || job.Timeout != 2*time.Second || job.maxRecords != DefaultMaxRecords || job.Account != "" || job.ResolvedAccount() != "main" || job.IDGiven() {
		t.Fatalf("defaults: %+v", job)
	}
	job, err = ex.Decode(sfblocks.Search, []byte(`{"id":"call-7","account":"main","timeout_ms":1500,"max_records":2000,"query":"SELECT Id FROM Contact"}`))
	if err != nil {
		t.Fatal(err)
	}
	if job.ID != "call-7" || job.Timeout != 1500*time.Millisecond || job.maxRecords != 2000 || job.Account != "main" || job.ResolvedAccount() != "main" || !job.IDGiven() {
		t.Fatalf("explicit: %+v", job)
	}

	job, err = ex.Decode(sfblocks.Insert, []byte(`{"object":"Case","fields":{
		"Subject":"Call from $(name) about \"$(topic)\"",
		"Priority__c":"$(prio)","IsEscalated":"$(esc)","Description":null,"Origin":"$$(literal)",
		"External_Id__c":"call-$(n)"},
		"variables":{"name":"O'Brien","topic":"x\\y","prio":3,"esc":true,"n":7},
		"external_id":{"field":"external_id__c","value":"call-$(n)"}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"Subject":     `Call from O'Brien about "x\y"`,
		"Priority__c": json.Number("3"),
		"IsEscalated": true,
		"Description": nil,
		"Origin":      "$(literal)",
	}
	if len(job.fields) != len(want) {
		t.Fatalf("fields = %v, want %v", job.fields, want)
	}
	for k, v := range want {
		if job.fields[k] != v {
			t.Errorf("field %s = %#v, want %#v", k, job.fields[k], v)
		}
	}
	if job.extField != "external_id__c" || job.extValue != "call-7" {
		t.Errorf("external id = %s/%s", job.extField, job.extValue)
	}
}

func TestHandleInvalidEchoesID(t *testing.T) {
	ex := newTestExecutor(t, nil)
	tests := []struct {
		name, given, wantID string
	}{
		{name: "id readable", given: `{"id":"job-42","query":"x","bogus":1}`, wantID: "job-42"},
		{name: "id unreadable", given: `{"id":"job-42",`, wantID: "gen-1"},
		{name: "id wrong type", given: `{"id":42,"query":"x"}`, wantID: "gen-2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ex.Handle(context.Background(), sfblocks.Search, []byte(tt.given))
			if r.ID != tt.wantID || r.Status != sfblocks.StatusFailed || r.Error == nil || r.Error.Code != sfblocks.CodeInvalidRequest || r.Error.Retryable {
				t.Fatalf("reply = %+v %+v", r, r.Error)
			}
		})
	}
}

func TestNewExecutorOptions(t *testing.T) {
	acc := StaticAccounts{}
	tests := []struct {
		name string
		opts []Option
	}{
		{"max job bytes", []Option{WithMaxJobBytes(0)}},
		{"default timeout", []Option{WithDefaultTimeout(-1)}},
		{"max timeout", []Option{WithMaxTimeout(0)}},
		{"default above max", []Option{WithDefaultTimeout(time.Minute), WithMaxTimeout(time.Second)}},
		{"id generator", []Option{WithIDGenerator(nil)}},
		{"clock", []Option{WithClock(nil)}},
	}
	for _, tt := range tests {
		if _, err := NewExecutor(acc, tt.opts...); err == nil {
			t.Errorf("%s: NewExecutor accepted an invalid option", tt.name)
		}
	}
	if _, err := NewExecutor(nil); err == nil {
		t.Error("NewExecutor(nil) succeeded")
	}
}

// FuzzPrescan: the shape scan of any job, valid JSON or not, ends without
// panicking, and never refuses a job the decoder would accept without it.
func FuzzPrescan(f *testing.F) {
	for _, seed := range []string{`{"query":"SELECT Id FROM Contact","variables":{"a":1}}`, `{"object":"Task","fields":{"A":[1,2]}}`,
		`{"where":[{"field":"a","op":"IN","value":[1,[2]]}]}`, `{"a":"\\"}`, `{`, `[]`, `{"fields":{"x":"\u00e9"}}`} {
		f.Add([]byte(seed))
	}
	ex, err := NewExecutor(StaticAccounts{Default: "main", Clients: map[string]SalesforceAPI{"main": &fakeAPI{}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, block := range []sfblocks.Block{sfblocks.Search, sfblocks.Insert} {
			err := prescan(block, data)
			if err == nil {
				continue
			}
			// What the scan refused, the decoder and the checks after it
			// refuse too.
			if _, derr := ex.decodeUnscanned(block, data); derr == nil {
				t.Fatalf("prescan refused %q (%v) but the decoder accepts it", data, err)
			}
		}
	})
}
