package breaker_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/sfblocks/sfblocks/auth"
	"github.com/sfblocks/sfblocks/blocks/salesforce"
	"github.com/sfblocks/sfblocks/blocks/salesforce/breaker"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

// waitTimeout bounds every wait of these tests; reaching it is a failure.
const waitTimeout = 10 * time.Second

// event is one state change reported by Settings.OnStateChange.
type event struct{ from, to breaker.State }

// wire counts the requests that actually leave for the network (it sits
// under the breaker) and can report each one as it starts.
type wire struct {
	next    http.RoundTripper
	n       atomic.Int64
	started chan struct{} // when non-nil, receives one value per request
}

func (w *wire) RoundTrip(r *http.Request) (*http.Response, error) {
	w.n.Add(1)
	if w.started != nil {
		w.started <- struct{}{}
	}
	return w.next.RoundTrip(r)
}

// account is one integration account of the harness: its own simulator,
// its breaker, and a REST client whose data calls and token requests both
// pass that breaker, as cmd/sfblocks wires them.
type account struct {
	name   string
	srv    *sfsim.Server
	wire   *wire
	b      *breaker.Breaker
	c      *salesforce.Client
	events chan event
}

// httpClient is the breaker-wrapped client of the account.
func (a *account) httpClient() *http.Client {
	return a.b.Client(&http.Client{Transport: a.wire})
}

// harness is a breaker Set with metrics and logs captured, and accounts.
type harness struct {
	set      *breaker.Set
	reg      *prometheus.Registry
	logs     *workertest.LogBuffer
	accounts map[string]*account
}

// setup starts one simulator per account name and builds the set, the
// token cache and the clients.
func setup(tb testing.TB, s breaker.Settings, names ...string) *harness {
	tb.Helper()
	h := &harness{reg: prometheus.NewRegistry(), logs: &workertest.LogBuffer{}, accounts: map[string]*account{}}
	base := http.DefaultTransport.(*http.Transport).Clone()
	tb.Cleanup(base.CloseIdleConnections)
	cfg := &auth.Config{}
	for i, name := range names {
		srv := workertest.StartSim(tb, sfsim.Options{})
		h.accounts[name] = &account{name: name, srv: srv, wire: &wire{next: base}, events: make(chan event, 64)}
		cfg.Accounts = append(cfg.Accounts, &auth.Account{
			Name: name, LoginURL: srv.MyDomainURL(), ClientID: sfsim.DefaultClientID,
			ClientSecret: auth.Secret(sfsim.DefaultClientSecret), Flow: auth.FlowClientCredentials,
			APIVersion: salesforce.DefaultAPIVersion, Default: i == 0,
		})
	}
	log := zerolog.New(h.logs)
	s.Logger, s.Registerer = log, h.reg
	s.OnStateChange = func(name string, from, to breaker.State) {
		select {
		case h.accounts[name].events <- event{from, to}:
		default: // more transitions than any test makes; the count check fails
		}
	}
	set, err := breaker.NewSet(s)
	if err != nil {
		tb.Fatal(err)
	}
	h.set = set
	cache, err := auth.NewCache(cfg, auth.CacheOptions{
		RetryBackoff:  time.Millisecond,
		HTTPClientFor: func(name string) *http.Client { return h.accounts[name].httpClient() },
	})
	if err != nil {
		tb.Fatal(err)
	}
	for _, a := range h.accounts {
		a.b = set.For(a.name)
		ts, err := cache.Source(a.name)
		if err != nil {
			tb.Fatal(err)
		}
		if a.c, err = salesforce.New(ts, salesforce.WithHTTPClient(a.httpClient())); err != nil {
			tb.Fatal(err)
		}
	}
	return h
}

// query is a cheap healthy call.
func query(ctx context.Context, a *account) error {
	_, err := a.c.Query(ctx, "SELECT Id, Name FROM Contact LIMIT 1")
	return err
}

// expectEvent waits for the account's next state change and checks it.
func expectEvent(t *testing.T, a *account, from, to breaker.State) {
	t.Helper()
	select {
	case e := <-a.events:
		if e.from != from || e.to != to {
			t.Fatalf("account %s: transition %s → %s, want %s → %s", a.name, e.from, e.to, from, to)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("account %s: no transition %s → %s", a.name, from, to)
	}
}

// expectNoEvent checks that no state change happened so far.
func expectNoEvent(t *testing.T, a *account) {
	t.Helper()
	select {
	case e := <-a.events:
		t.Fatalf("account %s: unexpected transition %s → %s", a.name, e.from, e.to)
	default:
	}
}

// waitHalfOpen waits until the open breaker's timeout has passed and
// checks that it then reports half-open. gobreaker takes no clock, so this
// waits for real time: the tests keep OpenTimeout at 100 ms.
func waitHalfOpen(t *testing.T, a *account) {
	t.Helper()
	until, ok := a.b.OpenUntil()
	if !ok {
		t.Fatalf("account %s: breaker not open (state %s)", a.name, a.b.State())
	}
	timer := time.NewTimer(time.Until(until))
	defer timer.Stop()
	<-timer.C
	if !workertest.Eventually(waitTimeout, func() bool { return a.b.State() == breaker.StateHalfOpen }) {
		t.Fatalf("account %s: still %s after its open timeout", a.name, a.b.State())
	}
	expectEvent(t, a, breaker.StateOpen, breaker.StateHalfOpen)
}

// trip makes the account's simulator answer 503 to everything and makes
// the five calls that open the breaker.
func trip(t *testing.T, a *account) {
	t.Helper()
	if err := a.srv.Faults().StartOutage(sfsim.OutageUnavailable, 0, time.Now()); err != nil {
		t.Fatal(err)
	}
	for range breaker.DefaultConsecutiveFailures {
		if err := query(ctxT(t), a); err == nil {
			t.Fatal("query succeeded during an outage")
		}
	}
	expectEvent(t, a, breaker.StateClosed, breaker.StateOpen)
}

func ctxT(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}
