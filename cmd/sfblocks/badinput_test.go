package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

// TestBadInputsThroughNATS sends hostile and malformed jobs through the real
// contract (NATS request → serve → simulator) and checks each gets a clear,
// structured answer: no crash, no hang, no silent drop.
func TestBadInputsThroughNATS(t *testing.T) {
	t.Parallel()
	// A server that accepts 8 MiB messages, so that an oversized job reaches
	// the worker instead of being refused by NATS itself.
	ns := workertest.StartNATS(t, func(o *server.Options) { o.MaxPayload = 8 << 20 })
	startServe(t, "--nats-url", ns.ClientURL(), "--sim-addr", "127.0.0.1:0")
	nc := workertest.Connect(t, ns)

	big := `{"query":"SELECT Id FROM Contact WHERE Name = '$(v)'","variables":{"v":"` + strings.Repeat("x", 2<<20) + `"}}`
	tests := []struct {
		name       string
		subject    string
		payload    string
		wantStatus sfblocks.Status
		wantCode   sfblocks.Code
		wantSF     string // salesforce_code
		wantInMsg  string
	}{
		{"malformed JSON", "sfblocks.search", `{"query": `, "failed", sfblocks.CodeInvalidRequest, "", "JSON"},
		{"not an object", "sfblocks.insert", `"Case"`, "failed", sfblocks.CodeInvalidRequest, "", ""},
		{"wrong type", "sfblocks.search", `{"query":"SELECT Id FROM Contact","max_records":"ten"}`, "failed", sfblocks.CodeInvalidRequest, "", "max_records"},
		{"unknown key", "sfblocks.search", `{"qurey":"SELECT Id FROM Contact"}`, "failed", sfblocks.CodeInvalidRequest, "", "qurey"},
		{"2 MiB job", "sfblocks.search", big, "failed", sfblocks.CodeInvalidRequest, "", "limit"},
		{"invalid UTF-8", "sfblocks.search", "{\"query\":\"SELECT Id FROM Contact WHERE Name = '\xff'\"}", "failed", sfblocks.CodeInvalidRequest, "", "UTF-8"},
		{"trailing data", "sfblocks.search", `{"query":"SELECT Id FROM Contact"} {}`, "failed", sfblocks.CodeInvalidRequest, "", ""},
		{"unknown object", "sfblocks.search", `{"query":"SELECT Id FROM Nope"}`, "failed", sfblocks.CodeSalesforceError, "INVALID_TYPE", ""},
		{"unknown field", "sfblocks.insert", `{"object":"Contact","fields":{"LastName":"X","Nope__c":"y"}}`, "failed", sfblocks.CodeSalesforceError, "INVALID_FIELD", ""},
		{"invalid object name", "sfblocks.insert", `{"object":"Contact/../limits","fields":{"LastName":"X"}}`, "failed", sfblocks.CodeInvalidRequest, "", "object"},
		{"too many fields", "sfblocks.insert", `{"object":"Contact","fields":{` + manyFields(201) + `}}`, "failed", sfblocks.CodeInvalidRequest, "", "200"},
		{"text outside quotes", "sfblocks.search", `{"query":"SELECT Id FROM Contact WHERE NumberOfEmployees = $(n)","variables":{"n":"1 OR Id != null"}}`, "failed", sfblocks.CodeInvalidRequest, "", "n"},
		{"hostile quote", "sfblocks.search", `{"query":"SELECT Id FROM Contact WHERE LastName = '$(v)'","variables":{"v":"' OR Name != '"}}`, "no_data", "", "", ""},
		{"hostile backslash", "sfblocks.search", `{"query":"SELECT Id FROM Contact WHERE LastName = '$(v)'","variables":{"v":"\\' OR 1=1"}}`, "no_data", "", "", ""},
		{"hostile LIKE", "sfblocks.search", `{"query":"SELECT Id FROM Contact WHERE LastName LIKE '$(v)'","variables":{"v":"%"}}`, "no_data", "", "", ""},
		{"hostile SOSL", "sfblocks.search", `{"language":"sosl","query":"FIND {$(v)} IN ALL FIELDS RETURNING Contact(Id)","variables":{"v":"zzq} RETURNING Account(Id"}}`, "no_data", "", "", ""},
		{"unknown account", "sfblocks.search", `{"account":"nope","query":"SELECT Id FROM Contact"}`, "failed", sfblocks.CodeUnknownAccount, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := nc.Request(tt.subject, []byte(tt.payload), 10*time.Second)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			var rep sfblocks.Reply
			if err := json.Unmarshal(msg.Data, &rep); err != nil {
				t.Fatalf("reply is not JSON: %v: %.200s", err, msg.Data)
			}
			if rep.Status != tt.wantStatus || rep.ID == "" {
				t.Fatalf("status %q id %q, want %q: %.300s", rep.Status, rep.ID, tt.wantStatus, msg.Data)
			}
			if tt.wantStatus != "failed" {
				return
			}
			if rep.Error == nil || rep.Error.Code != tt.wantCode || rep.Error.SalesforceCode != tt.wantSF || rep.Error.Message == "" {
				t.Fatalf("error %+v, want code %s salesforce_code %q", rep.Error, tt.wantCode, tt.wantSF)
			}
			if !strings.Contains(rep.Error.Message, tt.wantInMsg) {
				t.Errorf("message %q does not name %q", rep.Error.Message, tt.wantInMsg)
			}
			if msg.Header.Get("Nats-Service-Error-Code") == "" {
				t.Errorf("failed reply without the micro error header")
			}
		})
	}
	// The worker is still serving.
	msg, err := nc.Request("sfblocks.search", []byte(`{"query":"SELECT Id FROM Contact WHERE Email = 'ada@example.com'"}`), 10*time.Second)
	if err != nil || !strings.Contains(string(msg.Data), `"status":"ok"`) {
		t.Fatalf("worker not serving after the bad inputs: %v %s", err, msg.Data)
	}
}

func manyFields(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf(`"F%d__c":"v"`, i)
	}
	return strings.Join(parts, ",")
}
