package auth

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

// TestSimClientCredentialsRefusalHeals: Salesforce refuses a
// client_credentials account for 3 minutes (invalid_grant "no client
// credentials user enabled", as while the app's policy propagates), then
// allows it. Four processes keep asking for tokens every 5 s. The fleet
// sends one token request per backoff step (30 s doubling), answers the
// jobs in between with AUTH_RETRYING (retryable) without a request, shows
// the state as retrying, and recovers by itself. The 3 minutes are the
// simulator's and the caches' injected clock: the test takes seconds.
func TestSimClientCredentialsRefusalHeals(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	sim := workertest.StartSim(t, sfsim.Options{Now: clock.Now})
	refusedFor := 3 * time.Minute
	if err := sim.Faults().RefuseClientCredentials(&sfsim.GrantRefusal{Until: clock.Now().Add(refusedFor)}); err != nil {
		t.Fatal(err)
	}
	ns := workertest.StartNATS(t)
	c := testCipher(t)
	a := simAccount(sim, "backoffice", FlowClientCredentials, sim.MyDomainURL())
	var sources []*TokenSource
	for range 4 {
		_, js := workertest.JetStream(t, ns)
		_, ts := newTestCache(t, a, CacheOptions{Store: newKVStore(t, js, c, 5*time.Second), Now: clock.Now})
		sources = append(sources, ts)
	}
	ctx := ctxT(t)
	const step = 5 * time.Second
	var recovered time.Duration = -1
	var attempts []time.Duration // when the fleet sent a token request
	for elapsed := time.Duration(0); elapsed <= 10*time.Minute; elapsed += step {
		before := sim.Stats().TokenRequests
		var wg sync.WaitGroup
		var ok, retrying atomic.Int64
		for i := range 20 {
			wg.Go(func() {
				_, err := sources[i%4].Token(ctx)
				switch {
				case err == nil:
					ok.Add(1)
				case CodeOf(err) == CodeAuthRetrying && IsTransient(err) && strings.Contains(err.Error(), "no client credentials user enabled"):
					retrying.Add(1)
				default:
					t.Errorf("at +%v: %v", elapsed, err)
				}
			})
		}
		wg.Wait()
		if n := sim.Stats().TokenRequests - before; n > 0 {
			attempts = append(attempts, elapsed)
			if n > 1 {
				t.Errorf("at +%v: %d token requests in one step; want at most 1 across the fleet", elapsed, n)
			}
		}
		if ok.Load() == 20 {
			recovered = elapsed
			break
		}
		if ok.Load() > 0 {
			t.Fatalf("at +%v: %d jobs got a token, %d did not", elapsed, ok.Load(), retrying.Load())
		}
		for _, ts := range sources {
			if st := ts.State(); st.State != "retrying" || st.ErrorCode != CodeAuthRetrying || !st.RetryAt.After(clock.Now()) {
				t.Fatalf("at +%v: state %+v, want retrying with a retry time ahead", elapsed, st)
			}
		}
		clock.Advance(step)
	}
	requests := sim.Stats().TokenRequests
	t.Logf("refused for %v (simulated): recovered at +%v after %d token requests (at %v) across 4 processes × 20 jobs every %v",
		refusedFor, recovered, requests, attempts, step)
	if recovered < refusedFor || recovered > refusedFor+DefaultMaxRefusalBackoff {
		t.Fatalf("recovered at +%v; want after the refusal ended (+%v) and within one capped backoff", recovered, refusedFor)
	}
	if requests > 5 {
		t.Fatalf("%d token requests; want one per backoff step (at most 5 over %v)", requests, recovered)
	}
	for _, ts := range sources {
		if st := ts.State(); st.State != "valid" || !st.RetryAt.IsZero() {
			t.Fatalf("after recovery: %+v", st)
		}
	}
}

// TestCacheRefusalsClassified: which refusals are final (AUTH_FAILED,
// never sent again) and which may heal (AUTH_RETRYING, sent again only
// after the backoff), for both flows.
func TestCacheRefusalsClassified(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		flow     Flow
		failure  fakeFailure
		wantCode string
		wantMsg  string
	}{
		{"refresh token revoked", FlowWebServer, fakeFailure{400, "invalid_grant", "expired access/refresh token"}, CodeAuthFailed, "sfblocks authorize --account prod"},
		{"consumer secret wrong", FlowWebServer, fakeFailure{400, "invalid_client", "invalid client credentials"}, CodeAuthFailed, "consumer key/secret"},
		{"refresh behind a proxy's 403", FlowWebServer, fakeFailure{403, "", ""}, CodeAuthRetrying, "HTTP 403"},
		{"client credentials not enabled yet", FlowClientCredentials, fakeFailure{400, "invalid_grant", "no client credentials user enabled"}, CodeAuthRetrying, "10 minutes"},
		{"client credentials not allowed for the app yet", FlowClientCredentials, fakeFailure{400, "unauthorized_client", "client not allowed"}, CodeAuthRetrying, "Run As user"},
		{"client credentials behind a proxy's 403", FlowClientCredentials, fakeFailure{403, "", ""}, CodeAuthRetrying, "proxy"},
		{"client credentials on the login host", FlowClientCredentials, fakeFailure{400, "invalid_grant", "request not supported on this domain"}, CodeAuthFailed, "My Domain"},
		{"client credentials with a wrong secret", FlowClientCredentials, fakeFailure{400, "invalid_client", "invalid client credentials"}, CodeAuthFailed, "consumer key/secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeTokenEndpoint(t, "rt", false)
			f.failures = []fakeFailure{tt.failure, tt.failure, tt.failure}
			a := f.account("prod", tt.flow)
			a.RefreshToken = "rt"
			clock := newTestClock()
			_, ts := newTestCache(t, a, CacheOptions{Now: clock.Now})
			ctx := ctxT(t)
			_, err := ts.Token(ctx)
			if CodeOf(err) != tt.wantCode || !strings.Contains(err.Error(), tt.wantMsg) || IsTransient(err) != (tt.wantCode == CodeAuthRetrying) {
				t.Fatalf("err = %v; want %s mentioning %q", err, tt.wantCode, tt.wantMsg)
			}
			// Neither is sent again at once; only a refusal that may heal
			// is sent again, once its backoff has passed.
			clock.Advance(DefaultRefusalBackoff - time.Second)
			if _, err := ts.Token(ctx); CodeOf(err) != tt.wantCode || f.requests.Load() != 1 {
				t.Fatalf("within the backoff: err = %v, requests = %d; want %s and still 1", err, f.requests.Load(), tt.wantCode)
			}
			clock.Advance(2 * time.Second)
			_, err = ts.Token(ctx)
			want := int64(1)
			if tt.wantCode == CodeAuthRetrying {
				want = 2
				if !strings.Contains(err.Error(), "refusal 2") {
					t.Errorf("second refusal: %v", err)
				}
			}
			if f.requests.Load() != want {
				t.Fatalf("after the backoff: requests = %d, want %d (err %v)", f.requests.Load(), want, err)
			}
		})
	}
}

// TestSimRotatedTokenSurvivesAConcurrentRefusal: while worker A's refresh
// is in flight, a refusal of the same refresh token (what a second worker
// that took over the lease would write) lands in the store first. A's
// rotated refresh token is newer than the refused one, so A stores it
// over the refusal, and a fresh worker refreshes with it later.
func TestSimRotatedTokenSurvivesAConcurrentRefusal(t *testing.T) {
	t.Parallel()
	sim := workertest.StartSim(t, sfsim.Options{RotateRefreshTokens: true, TokenLatency: 500 * time.Millisecond})
	ns := workertest.StartNATS(t)
	c := testCipher(t)
	a := simAccount(sim, "prod", FlowWebServer, sim.LoginURL())
	_, jsA := workertest.JetStream(t, ns)
	_, jsB := workertest.JetStream(t, ns)
	storeA, storeB := newKVStore(t, jsA, c, 5*time.Second), newKVStore(t, jsB, c, 5*time.Second)
	seeded := seedAuthorized(t, sim, storeA, "prod")
	_, tsA := newTestCache(t, a, CacheOptions{Store: storeA})
	ctx := ctxT(t)
	before := sim.Stats().TokenRequests
	sim.ExpireAllSessions()
	done := make(chan error, 1)
	go func() { done <- callLimits(ctx, tsA) }()
	workertest.WaitFor(t, 10*time.Second, "A's refresh in flight", func() bool { return sim.Stats().TokenRequests > before })

	rec, rev, err := storeB.Load(ctx, "prod")
	if err != nil || rec.RefreshToken.Reveal() != seeded.RefreshToken {
		t.Fatalf("stored before A's answer: %v", err)
	}
	marked := *rec
	marked.FailedCredential, marked.FailedMessage = fingerprint(rec.RefreshToken.Reveal()), "Salesforce refused the refresh token; run `sfblocks authorize --account prod` again"
	if _, err := storeB.Save(ctx, "prod", &marked, rev); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("A: %v", err)
	}
	got, _, err := storeB.Load(ctx, "prod")
	if err != nil || got.FailedCredential != "" || got.RefreshToken.Reveal() == seeded.RefreshToken || got.Generation != 1 {
		t.Fatalf("after A: refused %q, refresh token rotated %v, generation %d, err %v; want A's rotated token, unrefused",
			got.FailedCredential, got.RefreshToken.Reveal() != seeded.RefreshToken, got.Generation, err)
	}

	// A fresh worker, after the next expiry, refreshes with it.
	_, jsC := workertest.JetStream(t, ns)
	_, tsC := newTestCache(t, a, CacheOptions{Store: newKVStore(t, jsC, c, 5*time.Second)})
	mid := sim.Stats().TokenRequests
	sim.ExpireAllSessions()
	if err := callLimits(ctx, tsC); err != nil {
		t.Fatalf("fresh worker after the refusal: %v", err)
	}
	if st := sim.Stats(); st.TokenRequests-mid != 1 || st.FamiliesRevoked != 0 {
		t.Fatalf("fresh worker: %d token requests, %d families revoked; want 1 and 0", st.TokenRequests-mid, st.FamiliesRevoked)
	}
}

// flakyStore fails Save with AUTH_UNAVAILABLE while failing is set, as a
// store that NATS cannot reach does; everything else goes to the real
// store.
type flakyStore struct {
	Store
	failing atomic.Bool
	// failTimes, when above 0, fails that many saves more.
	failTimes atomic.Int64
	failed    atomic.Int64
}

func (f *flakyStore) Save(ctx context.Context, account string, rec *Record, rev uint64) (uint64, error) {
	if f.failing.Load() || f.failTimes.Add(-1) >= 0 {
		f.failed.Add(1)
		return 0, newError(CodeUnavailable, account, "cannot write the shared token store", errors.New("nats: timeout"))
	}
	return f.Store.Save(ctx, account, rec, rev)
}

// TestSimRotatedTokenSaveRetried: the store cannot be written when a
// rotated refresh token arrives. The worker, holding the only copy, says
// so in an error log and keeps trying to store it, past its fetch's
// deadline, in the background and still holding the lease; once the store
// heals the token is stored and serves the next refresh.
func TestSimRotatedTokenSaveRetried(t *testing.T) {
	t.Parallel()
	// Which of the two happens is set by events, not by timing: the first
	// case fails a few saves within a fetch given ample time, the second
	// fails every save until the fetch has returned.
	tests := []struct {
		name           string
		refreshTimeout time.Duration
		failOnce       bool
		wantStore      string // "in the fetch" or "in the background"
	}{
		{"store back within the fetch", 20 * time.Second, true, "in the fetch"},
		{"store back after the fetch ended", time.Second, false, "in the background"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sim := workertest.StartSim(t, sfsim.Options{RotateRefreshTokens: true})
			ns := workertest.StartNATS(t)
			c := testCipher(t)
			a := simAccount(sim, "prod", FlowWebServer, sim.LoginURL())
			_, js := workertest.JetStream(t, ns)
			kv := newKVStore(t, js, c, 2*time.Second)
			seeded := seedAuthorized(t, sim, kv, "prod")
			store := &flakyStore{Store: kv}
			log, buf := workertest.NewLogger()
			_, ts := newTestCache(t, a, CacheOptions{Store: store, Logger: log, RefreshTimeout: tt.refreshTimeout})
			ctx := ctxT(t)
			sim.ExpireAllSessions()
			if tt.failOnce {
				// More failures than one save attempt follows (5), so the
				// error is logged, then the retry within the fetch stores it.
				store.failTimes.Store(8)
			} else {
				store.failing.Store(true)
			}
			err := callLimits(ctx, ts)
			store.failing.Store(false)
			if err != nil {
				t.Fatalf("the refreshed token was not handed out while it could not be stored: %v", err)
			}
			workertest.WaitFor(t, 15*time.Second, "the rotated refresh token stored", func() bool {
				rec, _, err := kv.Load(ctx, "prod")
				return err == nil && rec.RefreshToken.Reveal() != seeded.RefreshToken
			})
			var errLines int
			for _, l := range buf.Lines() {
				if strings.Contains(l, `"level":"error"`) && strings.Contains(l, "only copy") {
					errLines++
				}
			}
			if errLines == 0 || store.failed.Load() == 0 {
				t.Fatalf("no error log about the only copy (%d failed saves):\n%s", store.failed.Load(), buf)
			}
			if bg := strings.Contains(buf.String(), "rotated refresh token stored after all"); bg != (tt.wantStore == "in the background") {
				t.Fatalf("stored in the background = %v, want %s:\n%s", bg, tt.wantStore, buf)
			}
			// Another worker refreshes with the stored token next time.
			_, js2 := workertest.JetStream(t, ns)
			_, ts2 := newTestCache(t, a, CacheOptions{Store: newKVStore(t, js2, c, 2*time.Second)})
			sim.ExpireAllSessions()
			if err := callLimits(ctx, ts2); err != nil {
				t.Fatal(err)
			}
			if st := sim.Stats(); st.FamiliesRevoked != 0 || st.TokenGrants["refresh_token"] != 2 {
				t.Fatalf("families revoked %d, refresh grants %d; want 0 and 2", st.FamiliesRevoked, st.TokenGrants["refresh_token"])
			}
		})
	}
}
