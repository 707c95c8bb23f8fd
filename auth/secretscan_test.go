package auth

import (
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

// secretSet collects every secret value a test's flows handle.
type secretSet struct {
	mu   sync.Mutex
	vals map[string]string // value -> what it is
}

func (s *secretSet) add(kind, v string) {
	if v == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.vals[v] = kind
}

func (s *secretSet) addRecord(rec *Record) {
	if rec != nil {
		s.add("access token", rec.AccessToken.Reveal())
		s.add("refresh token", rec.RefreshToken.Reveal())
	}
}

// TestNoSecretInLogsOrErrors runs every flow, failures included, with debug
// logging into a buffer and checks that no secret value appears in any log
// line or error string.
func TestNoSecretInLogsOrErrors(t *testing.T) {
	t.Parallel()
	log, buf := workertest.NewLogger()
	secrets := &secretSet{vals: map[string]string{}}
	var errs []error
	keep := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	sim := workertest.StartSim(t, sfsim.Options{RotateRefreshTokens: true})
	ns := workertest.StartNATS(t)
	c, fleetB64, _ := GenerateKey()
	_, js := workertest.JetStream(t, ns)
	store := newKVStore(t, js, c, 2*time.Second)
	ctx := ctxT(t)
	secrets.add("consumer secret", sfsim.DefaultClientSecret)
	secrets.add("token key", fleetB64)

	a := simAccount(sim, "prod", FlowWebServer, sim.LoginURL())
	authorize := func(tamper func(z *Authorizer, redirect string) string) {
		z, err := NewAuthorizer(a, AuthorizerOptions{Store: store, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		secrets.add("PKCE verifier", z.verifier.Reveal())
		redirect := authorizeVia(t, z)
		u, _ := url.Parse(redirect)
		secrets.add("authorization code", u.Query().Get("code"))
		_, err = z.ExchangeRedirectURL(ctx, tamper(z, redirect))
		keep(err)
	}
	authorize(func(_ *Authorizer, r string) string { return strings.Replace(r, "state=", "state=bad", 1) })
	authorize(func(z *Authorizer, r string) string {
		z.verifier = "wrong-verifier-0123456789012345678901234567890123"
		return r
	})
	authorize(func(_ *Authorizer, r string) string { return r })
	rec, _, _ := store.Load(ctx, "prod")
	secrets.addRecord(rec)
	firstRefresh := rec.RefreshToken

	// Refresh with rotation, across expiries.
	_, ts := newTestCache(t, a, CacheOptions{Store: store, Logger: log})
	for range 3 {
		sim.ExpireAllSessions()
		keep(callLimits(ctx, ts))
		tok, err := ts.Token(ctx)
		keep(err)
		if tok != nil {
			secrets.add("access token", tok.AccessToken)
		}
		rec, _, _ := store.Load(ctx, "prod")
		secrets.addRecord(rec)
	}
	// Reuse a rotated-out refresh token in a memory-only worker: the
	// family is revoked, and then the fleet's refresh fails too.
	stale := *a
	stale.RefreshToken = firstRefresh
	_, tsStale := newTestCache(t, &stale, CacheOptions{Logger: log})
	keep(callLimits(ctx, tsStale))
	sim.ExpireAllSessions()
	keep(callLimits(ctx, ts))

	// Client credentials: wrong host, wrong secret, then right.
	for _, tc := range []struct {
		login  string
		secret Secret
	}{{sim.LoginURL(), Secret(sfsim.DefaultClientSecret)}, {sim.MyDomainURL(), "wrong-consumer-secret-xyz"}, {sim.MyDomainURL(), Secret(sfsim.DefaultClientSecret)}} {
		cc := simAccount(sim, "cc", FlowClientCredentials, tc.login)
		cc.ClientSecret = tc.secret
		secrets.add("consumer secret", tc.secret.Reveal())
		_, tsCC := newTestCache(t, cc, CacheOptions{Store: store, Logger: log})
		keep(callLimits(ctx, tsCC))
		if tok, err := tsCC.Token(ctx); err == nil {
			secrets.add("access token", tok.AccessToken)
		}
	}
	// A new authorization replaces the revoked family for what follows.
	authorize(func(_ *Authorizer, r string) string { return r })
	rec, _, _ = store.Load(ctx, "prod")
	secrets.addRecord(rec)

	// Wrong token key: the start check, readiness and jobs.
	wrongKey, wrongB64, _ := GenerateKey()
	secrets.add("token key", wrongB64)
	cWrong, tsWrong := newTestCache(t, a, CacheOptions{Store: newKVStore(t, js, wrongKey, time.Second), Logger: log})
	keep(cWrong.CheckStore(ctx))
	keep(cWrong.Ready())
	keep(callLimits(ctx, tsWrong))

	// Key rotation: a worker with a new key and the fleet's as the
	// previous one re-seals the record and refreshes.
	newKey, newB64, _ := GenerateKey()
	secrets.add("token key", newB64)
	_, tsRotated := newTestCache(t, a, CacheOptions{Store: newKVStore(t, js, newKey.WithPrevious(c), time.Second), Logger: log})
	sim.ExpireAllSessions()
	keep(callLimits(ctx, tsRotated))
	store = newKVStore(t, js, newKey, 2*time.Second)
	rec, _, _ = store.Load(ctx, "prod")
	secrets.addRecord(rec)

	// A token endpoint slower than the lease: the lease is renewed while
	// the request runs.
	sim.SetTokenLatency(2500 * time.Millisecond)
	_, tsSlow := newTestCache(t, a, CacheOptions{Store: store, Logger: log})
	sim.ExpireAllSessions()
	keep(callLimits(ctx, tsSlow))
	sim.SetTokenLatency(0)
	rec, _, _ = store.Load(ctx, "prod")
	secrets.addRecord(rec)

	// A rotated refresh token that cannot be stored at first.
	flaky := &flakyStore{Store: store}
	_, tsFlaky := newTestCache(t, a, CacheOptions{Store: flaky, Logger: log})
	sim.ExpireAllSessions()
	flaky.failing.Store(true)
	time.AfterFunc(200*time.Millisecond, func() { flaky.failing.Store(false) })
	keep(callLimits(ctx, tsFlaky))
	rec, _, _ = store.Load(ctx, "prod")
	secrets.addRecord(rec)

	// Client credentials refused for now, then reset by an operator.
	if err := sim.Faults().RefuseClientCredentials(&sfsim.GrantRefusal{}); err != nil {
		t.Fatal(err)
	}
	cc := simAccount(sim, "cc2", FlowClientCredentials, sim.MyDomainURL())
	_, tsRefused := newTestCache(t, cc, CacheOptions{Store: store, Logger: log})
	keep(callLimits(ctx, tsRefused))
	keep(callLimits(ctx, tsRefused))
	if r, err := ClearRefusal(ctx, store, "cc2"); err != nil || r == nil {
		t.Fatalf("ClearRefusal = %v, %v", r, err)
	} else {
		keep(errors.New(r.Message))
	}
	_ = sim.Faults().RefuseClientCredentials(nil)
	keep(callLimits(ctx, tsRefused))

	if len(errs) < 10 {
		t.Fatalf("only %d failures exercised: %v", len(errs), errs)
	}
	for _, want := range []string{"only copy", "the fleet tries again with backoff", "cannot open the fleet's stored tokens"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("no log line %q: the path was not exercised", want)
		}
	}
	if st := sim.Stats(); st.TokenGrants["refresh_token"] < 6 {
		t.Errorf("only %d refreshes succeeded: the rotation, slow-lease and save-retry paths did not all run", st.TokenGrants["refresh_token"])
	}
	for _, err := range errs {
		t.Log(err)
	}
	logs := buf.String()
	if !strings.Contains(logs, `"level":"debug"`) || !strings.Contains(logs, "access token refreshed") {
		t.Fatalf("debug logging did not run: %s", logs)
	}
	lines := strings.Split(logs, "\n")
	for v, kind := range secrets.vals {
		for _, l := range lines {
			if strings.Contains(l, v) {
				t.Errorf("%s leaked in log line %s", kind, l)
			}
		}
		for _, err := range errs {
			if strings.Contains(err.Error(), v) {
				t.Errorf("%s leaked in error %v", kind, err)
			}
		}
	}
	if len(secrets.vals) < 8 {
		t.Fatalf("too few secrets collected (%d)", len(secrets.vals))
	}
}
