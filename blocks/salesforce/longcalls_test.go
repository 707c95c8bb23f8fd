package salesforce_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sfblocks/sfblocks/blocks/salesforce"
)

func TestLimitLongCallsHoldsBackPastTheOrgsLimit(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var mu sync.Mutex
	arrived := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrived++
		mu.Unlock()
		if r.URL.Query().Get("q") == "SELECT Id FROM Slow__c" {
			<-release
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"totalSize":0,"done":true,"records":[]}`))
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	hc := salesforce.LimitLongCalls(srv.Client(), 1, 100*time.Millisecond)
	c, err := salesforce.New(salesforce.StaticToken("tok", srv.URL), salesforce.WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	slow := make(chan error, 1)
	go func() {
		_, err := c.Query(ctx, "SELECT Id FROM Slow__c")
		slow <- err
	}()
	// While the slow call is young, other calls go.
	if _, err := c.Query(ctx, "SELECT Id FROM Contact"); err != nil {
		t.Fatalf("a call next to a young one: %v", err)
	}
	time.Sleep(200 * time.Millisecond)
	mu.Lock()
	before := arrived
	mu.Unlock()
	_, err = c.Query(ctx, "SELECT Id FROM Contact")
	var ae *salesforce.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 403 || salesforce.Classify(err) != salesforce.KindConcurrencyLimited ||
		!strings.Contains(ae.Message, "Held back by sfblocks") {
		t.Fatalf("a call past the limit: %v (kind %v)", err, salesforce.Classify(err))
	}
	mu.Lock()
	if arrived != before {
		t.Error("the held-back call reached the server")
	}
	mu.Unlock()
	close(release)
	if err := <-slow; err != nil {
		t.Fatal(err)
	}
	if _, err := c.Query(ctx, "SELECT Id FROM Contact"); err != nil {
		t.Fatalf("after the long call ended: %v", err)
	}
}

func TestRequestLimitMessagesAreTwoKinds(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		msg  string
		kind salesforce.Kind
	}{
		{"TotalRequests Limit exceeded.", salesforce.KindRateLimited},
		{"ConcurrentRequests (Concurrent API Requests) Limit exceeded.", salesforce.KindConcurrencyLimited},
	} {
		err := &salesforce.APIError{StatusCode: 403, ErrorCode: salesforce.CodeRequestLimit, Message: tt.msg}
		if got := salesforce.Classify(err); got != tt.kind {
			t.Errorf("%q: %v, want %v", tt.msg, got, tt.kind)
		}
	}
}
