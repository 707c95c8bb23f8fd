package blocks

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks/salesforce"
)

// pagingServer answers /query with total records in pages of pageSize, as
// Salesforce may (batchSize is only a hint), and counts the requests.
func pagingServer(t *testing.T, total, pageSize int) (*salesforce.Client, *atomic.Int64) {
	t.Helper()
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		start := 0
		switch {
		case r.URL.Path == "/services/data/v66.0/query":
		case strings.HasPrefix(r.URL.Path, "/services/data/v66.0/query/01gCURSOR-"):
			fmt.Sscanf(strings.TrimPrefix(r.URL.Path, "/services/data/v66.0/query/01gCURSOR-"), "%d", &start)
		default:
			http.Error(w, `[{"errorCode":"NOT_FOUND","message":"no"}]`, http.StatusNotFound)
			return
		}
		end := min(start+pageSize, total)
		page := map[string]any{"totalSize": total, "done": end == total}
		recs := []map[string]any{}
		for i := start; i < end; i++ {
			recs = append(recs, map[string]any{
				"attributes": map[string]any{"type": "Contact", "url": fmt.Sprintf("/services/data/v66.0/sobjects/Contact/003%015d", i)},
				"Id":         fmt.Sprintf("003%015d", i),
			})
		}
		page["records"] = recs
		if end < total {
			page["nextRecordsUrl"] = fmt.Sprintf("/services/data/v66.0/query/01gCURSOR-%d", end)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(page)
	}))
	t.Cleanup(srv.Close)
	c, err := salesforce.New(salesforce.StaticToken("tok", srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	return c, &requests
}

func TestPagingToMaxRecords(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		total, page  int
		maxRecords   int
		wantCount    int
		wantTrunc    bool
		wantRequests int64
	}{
		{name: "stops at max_records mid-page", total: 7, page: 3, maxRecords: 5, wantCount: 5, wantTrunc: true, wantRequests: 2},
		{name: "follows every page", total: 7, page: 3, maxRecords: 10, wantCount: 7, wantRequests: 3},
		{name: "exact page boundary", total: 9, page: 3, maxRecords: 6, wantCount: 6, wantTrunc: true, wantRequests: 2},
		{name: "single page", total: 2, page: 3, maxRecords: 200, wantCount: 2, wantRequests: 1},
		{name: "none", total: 0, page: 3, maxRecords: 200, wantCount: 0, wantRequests: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, requests := pagingServer(t, tt.total, tt.page)
			ex := newTestExecutor(t, c)
			r := ex.Handle(context.Background(), sfblocks.Search, fmt.Appendf(nil, `{"query":"SELECT Id FROM Contact","max_records":%d}`, tt.maxRecords))
			if r.Count == nil || *r.Count != tt.wantCount || r.Truncated != tt.wantTrunc || len(r.Records) != tt.wantCount {
				t.Fatalf("reply count %v truncated %v records %d (error %+v)", r.Count, r.Truncated, len(r.Records), r.Error)
			}
			if got := requests.Load(); got != tt.wantRequests {
				t.Errorf("%d requests, want %d", got, tt.wantRequests)
			}
			for i, rec := range r.Records {
				if rec["Id"] != fmt.Sprintf("003%015d", i) {
					t.Fatalf("record %d = %v: pages out of order", i, rec)
				}
			}
		})
	}
}

// TestSimNaiveSubstitutionInjects is the control of the hostile-value
// cases: pasting the value in unescaped, as Bright Pattern does, finds
// records that the escaped statement does not.
func TestSimNaiveSubstitutionInjects(t *testing.T) {
	t.Parallel()
	ex, s := simExecutor(t)
	c, err := salesforce.New(salesforce.StaticToken(s.IssueToken("").AccessToken, s.InstanceURL()))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := "SELECT Id FROM Contact WHERE Name = '$(n)'"
	hostile := "' OR Name != '"
	naive, err := c.Query(context.Background(), strings.ReplaceAll(tmpl, "$(n)", hostile))
	if err != nil {
		t.Fatalf("naive query: %v", err)
	}
	if len(naive.Records) == 0 {
		t.Fatal("the naive statement found nothing; the hostile-value tests prove nothing")
	}
	r := handleJSON(t, ex, sfblocks.Search, m{"query": tmpl, "variables": m{"n": hostile}})
	if r.Status != sfblocks.StatusNoData {
		t.Fatalf("escaped statement: %+v %+v", r, r.Error)
	}
}
