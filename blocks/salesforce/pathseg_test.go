package salesforce_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/sfblocks/sfblocks/blocks/salesforce"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
)

// An external ID value of "." or ".." names a record, never the
// resource's parent: it is escaped as a path segment.
func TestUpsertValueIsOnePathSegment(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var uris []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		uris = append(uris, r.RequestURI)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"id":"001000000000001AAA","success":true,"errors":[],"created":true}`))
	}))
	t.Cleanup(srv.Close)
	c, err := salesforce.New(salesforce.StaticToken("t", srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{".", "..", "a/b", "x y", "../../limits"} {
		if _, err := c.Upsert(context.Background(), "Account", "Ext__c", v, map[string]any{"Name": "x"}); err != nil {
			t.Fatalf("upsert %q: %v", v, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for i, want := range []string{"/Ext__c/%2E", "/Ext__c/%2E%2E", "/Ext__c/a%2Fb", "/Ext__c/x%20y", "/Ext__c/..%2F..%2Flimits"} {
		if !strings.HasSuffix(uris[i], want) {
			t.Errorf("request URI %q, want it to end with %q", uris[i], want)
		}
	}

	// Against the simulator: the record is upserted under that value.
	sc, _, _ := simClient(t, sfsim.Options{})
	res, err := sc.Upsert(context.Background(), "Account", "External_Id__c", "..", map[string]any{"Name": "Dots"})
	if err != nil || !res.Created {
		t.Fatalf("upsert \"..\" on the simulator = %+v, %v", res, err)
	}
}
