package breaker_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks"
	"github.com/sfblocks/sfblocks/blocks/salesforce"
	"github.com/sfblocks/sfblocks/blocks/salesforce/breaker"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
)

// faultCount is how many requests reached the simulator and were failed by
// it (injected faults, or the daily limit).
func faultCount(srv *sfsim.Server) int64 {
	st := srv.Stats()
	n := st.LimitExceeded
	for _, v := range st.FaultsInjected {
		n += v
	}
	return n
}

func TestTripsOnSalesforceFailuresThenFailsFast(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		given    func(t *testing.T, srv *sfsim.Server) // the fault
		call     func(ctx context.Context, a *account) error
		slowCall time.Duration // SlowCall, when not the default
	}{
		{name: "503 outage", given: func(t *testing.T, srv *sfsim.Server) {
			mustDo(t, srv.Faults().StartOutage(sfsim.OutageUnavailable, 0, time.Now()))
		}},
		{name: "refused connections", given: func(t *testing.T, srv *sfsim.Server) {
			mustDo(t, srv.Faults().StartOutage(sfsim.OutageRefuse, 0, time.Now()))
		}},
		{name: "500 on every call", given: func(t *testing.T, srv *sfsim.Server) {
			mustDo(t, srv.Faults().AddErrorRate(sfsim.ErrorRule{Rate: 1, Status: 500}))
		}},
		{name: "403 REQUEST_LIMIT_EXCEEDED", given: func(t *testing.T, srv *sfsim.Server) {
			_, limit := srv.APIUsage()
			srv.SetAPIUsage(limit)
		}},
		// Salesforce hangs: calls wait longer than SlowCall (shortened to
		// keep the test quick) before their deadline cuts them short.
		{name: "timeouts", given: func(t *testing.T, srv *sfsim.Server) {
			mustDo(t, srv.Faults().SetLatency(sfsim.Latency{Fixed: sfsim.Duration(5 * time.Second)}))
		}, call: func(ctx context.Context, a *account) error {
			ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancel()
			return query(ctx, a)
		}, slowCall: 20 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := setup(t, breaker.Settings{OpenTimeout: time.Minute, SlowCall: tt.slowCall}, "prod")
			a := h.accounts["prod"]
			call := tt.call
			if call == nil {
				call = query
			}
			ctx := ctxT(t)
			if err := query(ctx, a); err != nil { // fetches and caches the token
				t.Fatal(err)
			}
			tt.given(t, a.srv)

			for i := 1; i <= breaker.DefaultConsecutiveFailures; i++ {
				err := call(ctx, a)
				if err == nil || errors.Is(err, breaker.ErrOpen) {
					t.Fatalf("call %d: err = %v; want Salesforce's failure", i, err)
				}
				if i < breaker.DefaultConsecutiveFailures {
					expectNoEvent(t, a)
				}
			}
			expectEvent(t, a, breaker.StateClosed, breaker.StateOpen)
			until, open := a.b.OpenUntil()
			if !open || a.b.State() != breaker.StateOpen {
				t.Fatalf("state %s, OpenUntil %v %v; want open", a.b.State(), until, open)
			}

			sent, faulted := a.wire.n.Load(), faultCount(a.srv)
			for range 20 {
				err := call(ctx, a)
				var oe *breaker.OpenError
				if !errors.Is(err, breaker.ErrOpen) || !errors.As(err, &oe) {
					t.Fatalf("err = %v; want the breaker's", err)
				}
				if oe.Account != "prod" || oe.State != breaker.StateOpen || !oe.RetryAt.Equal(until) {
					t.Fatalf("OpenError = %+v; want account prod, open until %v", oe, until)
				}
				if salesforce.Classify(err) != salesforce.KindTransient {
					t.Fatalf("Classify = %s; want transient", salesforce.Classify(err))
				}
				je := blocks.AsError(err)
				if je.Code != sfblocks.CodeSalesforceUnavailable || !je.Retryable ||
					!strings.Contains(je.Message, `"prod"`) || !strings.Contains(je.Message, "circuit breaker is open") {
					t.Fatalf("job error = %+v", je)
				}
			}
			if n := a.wire.n.Load(); n != sent {
				t.Fatalf("%d requests left while open", n-sent)
			}
			if n := faultCount(a.srv); n != faulted {
				t.Fatalf("the simulator saw %d requests while open", n-faulted)
			}
			expectNoEvent(t, a)
		})
	}
}

func TestJobFaultsNeverTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		given    func(t *testing.T, srv *sfsim.Server)
		call     func(ctx context.Context, a *account) error
		wantCode string // Salesforce's errorCode, or the OAuth error
	}{
		{name: "MALFORMED_QUERY", wantCode: salesforce.CodeMalformedQuery, call: func(ctx context.Context, a *account) error {
			_, err := a.c.Query(ctx, "SELEKT Id FROM Contact")
			return err
		}},
		{name: "INVALID_FIELD", wantCode: salesforce.CodeInvalidField, call: func(ctx context.Context, a *account) error {
			_, err := a.c.Query(ctx, "SELECT Id, NoSuchField__c FROM Contact")
			return err
		}},
		{name: "REQUIRED_FIELD_MISSING", wantCode: salesforce.CodeRequiredFieldMissing, call: func(ctx context.Context, a *account) error {
			_, err := a.c.Create(ctx, "Contact", map[string]any{"FirstName": "Ada"})
			return err
		}},
		{name: "UNABLE_TO_LOCK_ROW", wantCode: salesforce.CodeUnableToLockRow,
			given: func(t *testing.T, srv *sfsim.Server) { srv.Faults().LockNextWrites(100) },
			call: func(ctx context.Context, a *account) error {
				_, err := a.c.Create(ctx, "Contact", map[string]any{"LastName": "Locked"})
				return err
			}},
		{name: "404 NOT_FOUND", wantCode: salesforce.CodeNotFound, call: func(ctx context.Context, a *account) error {
			_, err := a.c.Describe(ctx, "NoSuchObject__c")
			return err
		}},
		{name: "other 4xx", wantCode: "INVALID_QUERY_FILTER_OPERATOR",
			given: func(t *testing.T, srv *sfsim.Server) {
				mustDo(t, srv.Faults().AddErrorRate(sfsim.ErrorRule{Rate: 1, Status: 400, ErrorCode: "INVALID_QUERY_FILTER_OPERATOR"}))
			}},
		{name: "403 other than the limit", wantCode: "INSUFFICIENT_ACCESS_OR_READONLY",
			given: func(t *testing.T, srv *sfsim.Server) {
				mustDo(t, srv.Faults().AddErrorRate(sfsim.ErrorRule{Rate: 1, Status: 403, ErrorCode: "INSUFFICIENT_ACCESS_OR_READONLY"}))
			}},
		{name: "token endpoint 400", wantCode: "invalid_client", call: func(ctx context.Context, a *account) error {
			cc := clientcredentials.Config{ClientID: sfsim.DefaultClientID, ClientSecret: "wrong",
				TokenURL: a.srv.MyDomainURL() + "/services/oauth2/token", AuthStyle: oauth2.AuthStyleInParams}
			_, err := cc.Token(context.WithValue(ctx, oauth2.HTTPClient, a.httpClient()))
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := setup(t, breaker.Settings{}, "prod")
			a := h.accounts["prod"]
			ctx := ctxT(t)
			if err := query(ctx, a); err != nil {
				t.Fatal(err)
			}
			if tt.given != nil {
				tt.given(t, a.srv)
			}
			call := tt.call
			if call == nil {
				call = query
			}
			for i := range 3 * breaker.DefaultConsecutiveFailures {
				err := call(ctx, a)
				if err == nil || !strings.Contains(err.Error(), tt.wantCode) {
					t.Fatalf("call %d: err = %v; want %s", i, err, tt.wantCode)
				}
			}
			expectNoEvent(t, a)
			if a.b.State() != breaker.StateClosed {
				t.Fatalf("state %s; want closed", a.b.State())
			}
		})
	}
}

func TestCallerCancellationNotCounted(t *testing.T) {
	t.Parallel()
	h := setup(t, breaker.Settings{}, "prod")
	a := h.accounts["prod"]
	if err := query(ctxT(t), a); err != nil {
		t.Fatal(err)
	}
	mustDo(t, a.srv.Faults().SetLatency(sfsim.Latency{Fixed: sfsim.Duration(time.Minute)}))
	a.wire.started = make(chan struct{})
	for range 3 * breaker.DefaultConsecutiveFailures {
		ctx, cancel := context.WithCancel(ctxT(t))
		errc := make(chan error, 1)
		go func() { errc <- query(ctx, a) }()
		select {
		case <-a.wire.started: // the request is on the wire; now the caller gives up
		case err := <-errc:
			cancel()
			t.Fatalf("call ended before reaching the wire: %v", err)
		}
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v; want context.Canceled", err)
		}
	}
	expectNoEvent(t, a)
	if a.b.State() != breaker.StateClosed {
		t.Fatalf("state %s; want closed", a.b.State())
	}
}

func TestHalfOpen(t *testing.T) {
	t.Parallel()
	settings := breaker.Settings{OpenTimeout: 100 * time.Millisecond}

	t.Run("probes succeed: closes", func(t *testing.T) {
		t.Parallel()
		h := setup(t, settings, "prod")
		a := h.accounts["prod"]
		trip(t, a)
		a.srv.Faults().EndOutage()
		waitHalfOpen(t, a)
		sent := a.wire.n.Load()
		for i := range breaker.DefaultHalfOpenProbes {
			if err := query(ctxT(t), a); err != nil {
				t.Fatalf("probe %d: %v", i, err)
			}
		}
		expectEvent(t, a, breaker.StateHalfOpen, breaker.StateClosed)
		if n := a.wire.n.Load() - sent; n != breaker.DefaultHalfOpenProbes {
			t.Fatalf("probes sent = %d", n)
		}
		if _, open := a.b.OpenUntil(); open || a.b.State() != breaker.StateClosed {
			t.Fatalf("state %s after successful probes", a.b.State())
		}
	})

	t.Run("probe fails: opens again", func(t *testing.T) {
		t.Parallel()
		h := setup(t, settings, "prod")
		a := h.accounts["prod"]
		trip(t, a) // the outage goes on
		first, _ := a.b.OpenUntil()
		waitHalfOpen(t, a)
		if err := query(ctxT(t), a); err == nil || errors.Is(err, breaker.ErrOpen) {
			t.Fatalf("probe err = %v; want the 503", err)
		}
		expectEvent(t, a, breaker.StateHalfOpen, breaker.StateOpen)
		second, open := a.b.OpenUntil()
		if !open || !second.After(first) {
			t.Fatalf("OpenUntil = %v %v; want a new open period after %v", second, open, first)
		}
		if err := query(ctxT(t), a); !errors.Is(err, breaker.ErrOpen) {
			t.Fatalf("err = %v; want fail fast", err)
		}
	})

	t.Run("calls beyond the probes fail fast", func(t *testing.T) {
		t.Parallel()
		h := setup(t, settings, "prod")
		a := h.accounts["prod"]
		trip(t, a)
		a.srv.Faults().EndOutage()
		// Slow answers keep the probes in flight while the next call comes.
		mustDo(t, a.srv.Faults().SetLatency(sfsim.Latency{Fixed: sfsim.Duration(200 * time.Millisecond)}))
		waitHalfOpen(t, a)
		a.wire.started = make(chan struct{}, breaker.DefaultHalfOpenProbes)
		var wg sync.WaitGroup
		for range breaker.DefaultHalfOpenProbes {
			wg.Go(func() {
				if err := query(ctxT(t), a); err != nil {
					t.Errorf("probe: %v", err)
				}
			})
		}
		for range breaker.DefaultHalfOpenProbes {
			select {
			case <-a.wire.started:
			case <-time.After(waitTimeout):
				t.Fatal("the probes did not reach the wire")
			}
		}
		err := query(ctxT(t), a)
		var oe *breaker.OpenError
		if !errors.As(err, &oe) || oe.State != breaker.StateHalfOpen || !oe.RetryAt.After(time.Now().Add(-time.Second)) {
			t.Fatalf("err = %v; want the breaker's half-open refusal", err)
		}
		if je := blocks.AsError(err); je.Code != sfblocks.CodeSalesforceUnavailable || !je.Retryable {
			t.Fatalf("job error = %+v", je)
		}
		wg.Wait()
		expectEvent(t, a, breaker.StateHalfOpen, breaker.StateClosed)
	})
}

func TestTokenEndpointFailuresShareTheBreaker(t *testing.T) {
	t.Parallel()
	h := setup(t, breaker.Settings{OpenTimeout: time.Minute}, "prod")
	a := h.accounts["prod"]
	ctx := ctxT(t)
	// No token yet, and the token endpoint is down too.
	a.srv.Faults().SetIncludeOAuth(true)
	mustDo(t, a.srv.Faults().StartOutage(sfsim.OutageUnavailable, 0, time.Now()))

	// The cache tries 4 times per fetch: the first call's 4 failures leave
	// the breaker closed, the second call's first failure opens it and its
	// retry is refused at once.
	if err := query(ctx, a); err == nil || errors.Is(err, breaker.ErrOpen) {
		t.Fatalf("first call: %v; want the token endpoint's failure", err)
	}
	expectNoEvent(t, a)
	err := query(ctx, a)
	expectEvent(t, a, breaker.StateClosed, breaker.StateOpen)
	if !errors.Is(err, breaker.ErrOpen) {
		t.Fatalf("second call: %v; want the breaker's refusal", err)
	}
	if n := a.srv.Stats().TokenRequests; n != breaker.DefaultConsecutiveFailures {
		t.Fatalf("token requests = %d; want %d", n, breaker.DefaultConsecutiveFailures)
	}
	je := blocks.AsError(err)
	if je.Code != sfblocks.CodeSalesforceUnavailable || !je.Retryable || !strings.Contains(je.Message, `"prod"`) {
		t.Fatalf("job error = %+v", je)
	}

	// Salesforce is back, but the same breaker refuses data calls and token
	// requests alike until it probes.
	a.srv.Faults().EndOutage()
	sent := a.wire.n.Load()
	for range 10 {
		if err := query(ctx, a); !errors.Is(err, breaker.ErrOpen) {
			t.Fatalf("err = %v; want fail fast", err)
		}
	}
	if n := a.wire.n.Load(); n != sent {
		t.Fatalf("%d requests left while open", n-sent)
	}
}

func TestAccountsAreIsolated(t *testing.T) {
	t.Parallel()
	h := setup(t, breaker.Settings{OpenTimeout: time.Minute}, "a", "b")
	a, b := h.accounts["a"], h.accounts["b"]
	ctx := ctxT(t)
	for _, acc := range []*account{a, b} {
		if err := query(ctx, acc); err != nil {
			t.Fatal(err)
		}
	}
	trip(t, a)
	for range 10 {
		if err := query(ctx, a); !errors.Is(err, breaker.ErrOpen) {
			t.Fatalf("account a: %v; want fail fast", err)
		}
		if err := query(ctx, b); err != nil {
			t.Fatalf("account b during a's outage: %v", err)
		}
	}
	expectNoEvent(t, b)
	if b.b.State() != breaker.StateClosed || h.set.For("b") != b.b || h.set.For("a") == b.b {
		t.Fatalf("account b's breaker: %s", b.b.State())
	}
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A job's own short deadline is the job's choice, not Salesforce failing:
// five jobs of 50 ms against an org answering in 100 ms leave the breaker
// closed, and the account's other calls go on.
func TestJobDeadlineDoesNotOpenTheBreaker(t *testing.T) {
	t.Parallel()
	h := setup(t, breaker.Settings{OpenTimeout: time.Minute}, "prod")
	a := h.accounts["prod"]
	ctx := ctxT(t)
	if err := query(ctx, a); err != nil { // fetches and caches the token
		t.Fatal(err)
	}
	mustDo(t, a.srv.Faults().SetLatency(sfsim.Latency{Fixed: sfsim.Duration(100 * time.Millisecond)}))
	for i := 0; i < 2*breaker.DefaultConsecutiveFailures; i++ {
		jctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		err := query(jctx, a)
		cancel()
		if err == nil || errors.Is(err, breaker.ErrOpen) {
			t.Fatalf("call %d: err = %v; want the job's own timeout", i, err)
		}
	}
	expectNoEvent(t, a)
	if st := a.b.State(); st != breaker.StateClosed {
		t.Fatalf("state %s after jobs that gave up on their own; want closed", st)
	}
	if err := query(ctx, a); err != nil {
		t.Errorf("a call with time to wait: %v", err)
	}
}
