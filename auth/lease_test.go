package auth

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

// TestSimTokenEndpointSlowerThanLease: the token endpoint takes 3 s while
// the lease lasts 2 s. Four processes (four NATS connections, four caches)
// run 200 jobs across each expiry, with refresh token rotation on: the
// holder keeps its lease alive while its request runs, so nobody else
// presents the same refresh token, exactly one token request is sent per
// expiry, no job fails, and the rotated refresh token serves the next
// expiry.
func TestSimTokenEndpointSlowerThanLease(t *testing.T) {
	t.Parallel()
	const ttl, latency = 2 * time.Second, 3 * time.Second
	sim := workertest.StartSim(t, sfsim.Options{RotateRefreshTokens: true, TokenLatency: latency})
	ns := workertest.StartNATS(t)
	c := testCipher(t)
	a := simAccount(sim, "prod", FlowWebServer, sim.LoginURL())
	var sources []*TokenSource
	for i := range 4 {
		_, js := workertest.JetStream(t, ns)
		store := newKVStore(t, js, c, ttl)
		if i == 0 {
			seedAuthorized(t, sim, store, "prod")
		}
		_, ts := newTestCache(t, a, CacheOptions{Store: store})
		sources = append(sources, ts)
	}
	ctx := ctxT(t)
	for round := range 2 {
		for _, ts := range sources {
			if err := callLimits(ctx, ts); err != nil {
				t.Fatal(err)
			}
		}
		before := sim.Stats()
		sim.ExpireAllSessions()
		var wg sync.WaitGroup
		var failed atomic.Int64
		start := time.Now()
		for i := range 200 {
			wg.Go(func() {
				if err := callLimits(ctx, sources[i%4]); err != nil {
					failed.Add(1)
					t.Error(err)
				}
			})
		}
		wg.Wait()
		after := sim.Stats()
		d := after.TokenRequests - before.TokenRequests
		t.Logf("expiry %d: %d token request(s) across 4 processes × 200 jobs, %d failed, %v (endpoint %v, lease %v)",
			round+1, d, failed.Load(), time.Since(start).Round(time.Millisecond), latency, ttl)
		if d != 1 || after.TokenGrants["refresh_token"]-before.TokenGrants["refresh_token"] != 1 {
			t.Fatalf("expiry %d: token requests = %d, refresh grants = %d; want exactly 1 (errors %v)", round+1, d,
				after.TokenGrants["refresh_token"]-before.TokenGrants["refresh_token"], after.TokenErrors)
		}
		if after.FamiliesRevoked != 0 {
			t.Fatal("a rotated-out refresh token was presented again")
		}
	}
}

// TestKVLeaseByServerClock: three workers whose wall clocks are 2 minutes
// apart each way. The lease is held by one at a time, even when a holder
// keeps it longer than its TTL, and a dead holder's lease ends on the NATS
// server's schedule (its TTL after the last renewal), not on any worker's
// clock.
func TestKVLeaseByServerClock(t *testing.T) {
	t.Parallel()
	const ttl = 2 * time.Second
	ns := workertest.StartNATS(t)
	c := testCipher(t)
	skews := []time.Duration{-2 * time.Minute, 0, 2 * time.Minute}
	stores := make([]*KVStore, len(skews))
	closers := make([]func(), len(skews))
	for i, skew := range skews {
		nc, js := workertest.JetStream(t, ns)
		s, err := NewKVStore(ctxT(t), js, KVStoreConfig{Cipher: c, LeaseTTL: ttl, Now: skewed(skew), Holder: fmt.Sprintf("skew%+v", skew)})
		if err != nil {
			t.Fatal(err)
		}
		stores[i], closers[i] = s, nc.Close
	}
	ctx := ctxT(t)

	t.Run("one holder at a time", func(t *testing.T) {
		var holders, most atomic.Int32
		hold := func(s *KVStore, d time.Duration) {
			l, err := s.Lease(ctx, "prod")
			if err != nil {
				t.Error(err)
				return
			}
			n := holders.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			select {
			case <-time.After(d):
			case <-l.Lost():
				t.Error("a held lease was lost")
			}
			holders.Add(-1)
			l.Release(ctx)
		}
		// The slow worker holds the lease for longer than its TTL while the
		// others, one of them 4 minutes ahead of it, keep asking.
		first, err := stores[0].Lease(ctx, "prod")
		if err != nil {
			t.Fatal(err)
		}
		holders.Add(1)
		most.Store(1)
		var wg sync.WaitGroup
		for round := range 3 {
			for _, s := range stores {
				wg.Go(func() { hold(s, time.Duration(20*(round+1))*time.Millisecond) })
			}
		}
		select {
		case <-time.After(ttl + ttl/4):
		case <-first.Lost():
			t.Error("the first holder lost its lease while renewing it")
		}
		holders.Add(-1)
		first.Release(ctx)
		wg.Wait()
		if m := most.Load(); m != 1 {
			t.Fatalf("%d workers held the lease at once", m)
		}
	})

	t.Run("a dead holder's lease ends on the server's schedule", func(t *testing.T) {
		// The holder runs 2 minutes ahead and dies (its connection drops,
		// nothing is released); the worker running 2 minutes behind takes
		// over once the server has expired the lease.
		if _, err := stores[2].Lease(ctx, "dead"); err != nil {
			t.Fatal(err)
		}
		closers[2]()
		died := time.Now()
		wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		l, err := stores[0].Lease(wctx, "dead")
		if err != nil {
			t.Fatalf("lease not taken over within 15 s of its holder's death: %v", err)
		}
		defer l.Release(ctx)
		took := time.Since(died)
		t.Logf("lease taken over %v after its holder died (TTL %v, renewed every %v)", took.Round(time.Millisecond), ttl, ttl/3)
		if took < ttl/2 || took > ttl+1500*time.Millisecond {
			t.Fatalf("taken over %v after the holder died; want within the TTL (%v) after its last renewal", took, ttl)
		}
	})
}

// TestSimExactlyOneTokenRequestWithSkewedClocks: the fleet test of
// TestSimExactlyOneTokenRequestAcrossProcesses with workers whose clocks
// (stores' and caches') are 2 minutes apart each way.
func TestSimExactlyOneTokenRequestWithSkewedClocks(t *testing.T) {
	t.Parallel()
	sim := workertest.StartSim(t, sfsim.Options{RotateRefreshTokens: true, TokenLatency: 300 * time.Millisecond})
	ns := workertest.StartNATS(t)
	c := testCipher(t)
	a := simAccount(sim, "prod", FlowWebServer, sim.LoginURL())
	var sources []*TokenSource
	for i, skew := range []time.Duration{-2 * time.Minute, 0, 2 * time.Minute} {
		_, js := workertest.JetStream(t, ns)
		store, err := NewKVStore(ctxT(t), js, KVStoreConfig{Cipher: c, LeaseTTL: 5 * time.Second, Now: skewed(skew)})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			seedAuthorized(t, sim, store, "prod")
		}
		_, ts := newTestCache(t, a, CacheOptions{Store: store, Now: skewed(skew)})
		sources = append(sources, ts)
	}
	ctx := ctxT(t)
	for round := range 3 {
		for _, ts := range sources {
			if err := callLimits(ctx, ts); err != nil {
				t.Fatal(err)
			}
		}
		before := sim.Stats()
		sim.ExpireAllSessions()
		var wg sync.WaitGroup
		for i := range 150 {
			wg.Go(func() {
				if err := callLimits(ctx, sources[i%3]); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		after := sim.Stats()
		d := after.TokenRequests - before.TokenRequests
		t.Logf("expiry %d: %d token request(s) across 3 processes with clocks at -2m, 0, +2m", round+1, d)
		if d != 1 || after.FamiliesRevoked != 0 {
			t.Fatalf("expiry %d: token requests = %d (errors %v), families revoked %d; want exactly 1 and none", round+1, d, after.TokenErrors, after.FamiliesRevoked)
		}
	}
}
