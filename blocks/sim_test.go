package blocks

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks/salesforce"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

// simExecutor starts a simulator and returns an executor whose default
// account talks to it through a real salesforce.Client.
func simExecutor(t *testing.T) (*Executor, *sfsim.Server) {
	t.Helper()
	s := workertest.StartSim(t, sfsim.Options{})
	c, err := salesforce.New(salesforce.StaticToken(s.IssueToken("").AccessToken, s.InstanceURL()))
	if err != nil {
		t.Fatal(err)
	}
	return newTestExecutor(t, c), s
}

func handleJSON(t *testing.T, ex *Executor, block sfblocks.Block, job any) *sfblocks.Reply {
	t.Helper()
	payload, err := json.Marshal(job)
	if err != nil {
		t.Fatal(err)
	}
	r := ex.Handle(context.Background(), block, payload)
	// Every reply must survive the trip to JSON.
	if _, err := json.Marshal(r); err != nil {
		t.Fatalf("encode reply: %v", err)
	}
	return r
}

type m = map[string]any

func TestSimSearch(t *testing.T) {
	t.Parallel()
	ex, _ := simExecutor(t)
	tests := []struct {
		name       string
		job        m
		wantStatus sfblocks.Status
		wantName   string // first record's Name or LastName
	}{
		{name: "phone in literal", job: m{"query": "SELECT Id, Name FROM Contact WHERE Phone = '$(phone)'", "variables": m{"phone": "+1 415 555 0100"}},
			wantStatus: sfblocks.StatusOK, wantName: "Ada Byron"},
		{name: "quote in value", job: m{"query": "SELECT Id, Name, LastName FROM Contact WHERE LastName = '$(n)'", "variables": m{"n": "O'Brien"}},
			wantStatus: sfblocks.StatusOK, wantName: "O'Brien"},
		{name: "like prefix", job: m{"query": "SELECT Id, Name FROM Account WHERE Name LIKE '$(p)%'", "variables": m{"p": "Acme Corp"}},
			wantStatus: sfblocks.StatusOK, wantName: "Acme Corporation"},
		{name: "structured", job: m{"object": "Contact", "fields": []string{"Id", "Name", "Email"},
			"where": []m{{"field": "Email", "op": "=", "value": "$(e)"}}, "variables": m{"e": "ada@example.com"}},
			wantStatus: sfblocks.StatusOK, wantName: "Ada Byron"},
		{name: "structured like", job: m{"object": "Account", "fields": []string{"Name"},
			"where": []m{{"field": "Name", "op": "LIKE", "value": "Acme Corp%"}}},
			wantStatus: sfblocks.StatusOK, wantName: "Acme Corporation"},
		{name: "sosl", job: m{"language": "sosl", "query": "FIND {$(q)} IN EMAIL FIELDS RETURNING Contact(Id, Name)", "variables": m{"q": "ada@example.com"}},
			wantStatus: sfblocks.StatusOK, wantName: "Ada Byron"},

		// Hostile values stay literal text: nothing matches them.
		{name: "hostile OR", job: m{"query": "SELECT Id FROM Contact WHERE Name = '$(n)'", "variables": m{"n": "' OR Name != '"}},
			wantStatus: sfblocks.StatusNoData},
		{name: "hostile backslash quote", job: m{"query": "SELECT Id FROM Contact WHERE Name = '$(n)'", "variables": m{"n": `\' OR Name != \'`}},
			wantStatus: sfblocks.StatusNoData},
		{name: "hostile backslash", job: m{"query": "SELECT Id FROM Contact WHERE Name = '$(n)'", "variables": m{"n": `\`}},
			wantStatus: sfblocks.StatusNoData},
		{name: "hostile percent in LIKE", job: m{"query": "SELECT Id FROM Contact WHERE Name LIKE '$(n)'", "variables": m{"n": "%"}},
			wantStatus: sfblocks.StatusNoData},
		{name: "hostile underscore in LIKE", job: m{"query": "SELECT Id FROM Account WHERE Name LIKE '$(n)%'", "variables": m{"n": "_cme"}},
			wantStatus: sfblocks.StatusNoData},
		{name: "hostile structured", job: m{"object": "Contact", "fields": []string{"Id"},
			"where": []m{{"field": "Name", "op": "=", "value": "x' OR Name != 'y"}}},
			wantStatus: sfblocks.StatusNoData},
		{name: "hostile sosl brace", job: m{"language": "sosl", "query": "FIND {$(q)} RETURNING Contact(Id, Name)", "variables": m{"q": "zzqx} RETURNING Account(Id"}},
			wantStatus: sfblocks.StatusNoData},
		{name: "hostile sosl wildcard", job: m{"language": "sosl", "query": "FIND {$(q)} RETURNING Contact(Id, Name)", "variables": m{"q": "A*"}},
			wantStatus: sfblocks.StatusNoData},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := handleJSON(t, ex, sfblocks.Search, tt.job)
			if r.Status != tt.wantStatus {
				t.Fatalf("status = %s, want %s; reply %+v error %+v", r.Status, tt.wantStatus, r, r.Error)
			}
			if tt.wantName == "" {
				if r.Count == nil || *r.Count != 0 {
					t.Errorf("count = %v, want 0", r.Count)
				}
				return
			}
			name, _ := r.First["Name"].(string)
			if last, ok := r.First["LastName"].(string); ok && name != tt.wantName {
				name = last
			}
			if name != tt.wantName {
				t.Errorf("first = %v, want Name %q", r.First, tt.wantName)
			}
			if _, ok := r.First["attributes"]; ok {
				t.Errorf("first still has attributes: %v", r.First)
			}
		})
	}
}

func TestSimPaging(t *testing.T) {
	t.Parallel()
	ex, s := simExecutor(t)
	total := s.DB().Count("Contact")
	if total < 250 {
		t.Skipf("seed has only %d contacts", total)
	}
	tests := []struct {
		name      string
		job       m
		wantCount int
		wantTrunc bool
	}{
		{name: "default 200", job: m{"query": "SELECT Id FROM Contact"}, wantCount: 200, wantTrunc: true},
		{name: "250 over pages", job: m{"query": "SELECT Id FROM Contact", "max_records": 250}, wantCount: 250, wantTrunc: true},
		{name: "all", job: m{"query": "SELECT Id FROM Contact", "max_records": 2000}, wantCount: total},
		{name: "limit below max_records", job: m{"object": "Contact", "fields": []string{"Id"}, "limit": 3, "order_by": "LastName"}, wantCount: 3},
		{name: "count", job: m{"query": "SELECT COUNT() FROM Contact"}, wantCount: total},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := handleJSON(t, ex, sfblocks.Search, tt.job)
			if r.Status != sfblocks.StatusOK || r.Count == nil || *r.Count != tt.wantCount || r.Truncated != tt.wantTrunc {
				t.Fatalf("reply status %s count %v truncated %v, want %d %v (error %+v)", r.Status, r.Count, r.Truncated, tt.wantCount, tt.wantTrunc, r.Error)
			}
			if len(r.Records) > 0 && len(r.Records) != tt.wantCount {
				t.Errorf("%d records, want %d", len(r.Records), tt.wantCount)
			}
			seen := map[any]bool{}
			for _, rec := range r.Records {
				if seen[rec["Id"]] {
					t.Fatalf("record %v returned twice", rec["Id"])
				}
				seen[rec["Id"]] = true
			}
		})
	}
}

func TestSimInsert(t *testing.T) {
	t.Parallel()
	ex, s := simExecutor(t)
	before := s.DB().Count("Contact")

	r := handleJSON(t, ex, sfblocks.Insert, m{"object": "Contact", "fields": m{"LastName": "Lovelace $(n)", "FirstName": "Ada", "Email": "$(e)"},
		"variables": m{"n": "II", "e": "ada2@example.com"}})
	if r.Status != sfblocks.StatusOK || len(r.ObjectID) != 18 || r.Created == nil || !*r.Created {
		t.Fatalf("create reply = %+v %+v", r, r.Error)
	}
	check := handleJSON(t, ex, sfblocks.Search, m{"query": "SELECT LastName FROM Contact WHERE Id = '$(id)'", "variables": m{"id": r.ObjectID}})
	if check.First["LastName"] != "Lovelace II" {
		t.Fatalf("created record = %+v", check.First)
	}

	upsert := m{"object": "Contact", "fields": m{"LastName": "Hopper"}, "external_id": m{"field": "External_Id__c", "value": "call-$(n)"}, "variables": m{"n": 991}}
	first := handleJSON(t, ex, sfblocks.Insert, upsert)
	second := handleJSON(t, ex, sfblocks.Insert, upsert)
	if first.Status != sfblocks.StatusOK || first.Created == nil || !*first.Created {
		t.Fatalf("first upsert = %+v %+v", first, first.Error)
	}
	if second.Status != sfblocks.StatusOK || second.Created == nil || *second.Created || second.ObjectID != first.ObjectID {
		t.Fatalf("second upsert = %+v %+v (first id %s)", second, second.Error, first.ObjectID)
	}
	if got := s.DB().Count("Contact"); got != before+2 {
		t.Errorf("contacts = %d, want %d (one create, one upsert twice)", got, before+2)
	}
}

func TestSimFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		setup         func(s *sfsim.Server)
		block         sfblocks.Block
		job           m
		wantCode      sfblocks.Code
		wantSFCode    string
		wantResult    int
		wantRetryable bool
	}{
		{name: "required field missing", block: sfblocks.Insert, job: m{"object": "Contact", "fields": m{"FirstName": "Ada"}},
			wantCode: sfblocks.CodeSalesforceError, wantSFCode: "REQUIRED_FIELD_MISSING", wantResult: 400},
		{name: "unknown field", block: sfblocks.Insert, job: m{"object": "Contact", "fields": m{"LastName": "x", "Nope__c": "y"}},
			wantCode: sfblocks.CodeSalesforceError, wantSFCode: "INVALID_FIELD", wantResult: 400},
		{name: "malformed query", block: sfblocks.Search, job: m{"query": "SELECT Id FROM Contact WHERE"},
			wantCode: sfblocks.CodeSalesforceError, wantSFCode: "MALFORMED_QUERY", wantResult: 400},
		{name: "unknown object", block: sfblocks.Search, job: m{"object": "Nope__c", "fields": []string{"Id"}},
			wantCode: sfblocks.CodeSalesforceError, wantSFCode: "INVALID_TYPE", wantResult: 400},
		{name: "row lock", setup: func(s *sfsim.Server) { s.Faults().LockNextWrites(1) }, block: sfblocks.Insert,
			job:      m{"object": "Contact", "fields": m{"LastName": "x"}},
			wantCode: sfblocks.CodeSalesforceError, wantSFCode: "UNABLE_TO_LOCK_ROW", wantResult: 400, wantRetryable: true},
		{name: "outage", setup: func(s *sfsim.Server) { _ = s.Faults().StartOutage(sfsim.OutageUnavailable, 0, time.Time{}) }, block: sfblocks.Search,
			job:      m{"query": "SELECT Id FROM Contact"},
			wantCode: sfblocks.CodeSalesforceUnavailable, wantSFCode: "SERVER_UNAVAILABLE", wantResult: 503, wantRetryable: true},
		{name: "refused connections", setup: func(s *sfsim.Server) { _ = s.Faults().StartOutage(sfsim.OutageRefuse, 0, time.Time{}) }, block: sfblocks.Search,
			job:      m{"query": "SELECT Id FROM Contact"},
			wantCode: sfblocks.CodeSalesforceUnavailable, wantRetryable: true},
		{name: "api limit", setup: func(s *sfsim.Server) { s.SetAPIUsage(sfsim.DefaultDailyAPILimit) }, block: sfblocks.Search,
			job:      m{"query": "SELECT Id FROM Contact"},
			wantCode: sfblocks.CodeRateLimited, wantSFCode: "REQUEST_LIMIT_EXCEEDED", wantResult: 403, wantRetryable: true},
		{name: "timeout", setup: func(s *sfsim.Server) {
			_ = s.Faults().SetLatency(sfsim.Latency{Fixed: sfsim.Duration(5 * time.Second)})
		}, block: sfblocks.Search,
			job:      m{"query": "SELECT Id FROM Contact", "timeout_ms": 100},
			wantCode: sfblocks.CodeTimeout, wantRetryable: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ex, s := simExecutor(t)
			if tt.setup != nil {
				tt.setup(s)
			}
			r := handleJSON(t, ex, tt.block, tt.job)
			if r.Status != sfblocks.StatusFailed || r.Error == nil {
				t.Fatalf("reply = %+v", r)
			}
			e := r.Error
			if e.Code != tt.wantCode || e.SalesforceCode != tt.wantSFCode || r.ResultCode != tt.wantResult || e.Retryable != tt.wantRetryable {
				t.Fatalf("error = %+v result %d; want %s %q %d retryable %v (body %s)", e, r.ResultCode, tt.wantCode, tt.wantSFCode, tt.wantResult, tt.wantRetryable, r.ResultBody)
			}
			if tt.wantResult != 0 && r.ResultBody == "" {
				t.Error("no result_body")
			}
		})
	}
}

func TestSimExpiredSession(t *testing.T) {
	t.Parallel()
	s := workertest.StartSim(t, sfsim.Options{})
	c, err := salesforce.New(salesforce.StaticToken("00D000000000001!AQnotatoken", s.InstanceURL()))
	if err != nil {
		t.Fatal(err)
	}
	r := newTestExecutor(t, c).Handle(context.Background(), sfblocks.Search, []byte(`{"query":"SELECT Id FROM Contact"}`))
	if r.Error == nil || r.Error.Code != sfblocks.CodeAuthFailed || r.Error.Retryable || r.ResultCode != 401 {
		t.Fatalf("reply = %+v %+v", r, r.Error)
	}
	if b, _ := json.Marshal(r); strings.Contains(string(b), "notatoken") {
		t.Errorf("reply leaks the token: %s", b)
	}
}
