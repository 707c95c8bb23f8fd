package auth

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

func TestKVStoreEncryptedAtRest(t *testing.T) {
	t.Parallel()
	ns := workertest.StartNATS(t)
	_, js := workertest.JetStream(t, ns)
	c := testCipher(t)
	s := newKVStore(t, js, c, time.Second)
	ctx := ctxT(t)
	rec := &Record{AccessToken: "AT-plaintext-marker", RefreshToken: "RT-plaintext-marker", InstanceURL: "https://acme.my.salesforce.com", IssuedAt: time.Now().UTC()}
	if _, err := s.Put(ctx, "prod", rec); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := kv.Get(ctx, "token.prod")
	if err != nil {
		t.Fatal(err)
	}
	for _, marker := range []string{"AT-plaintext-marker", "RT-plaintext-marker", "acme.my.salesforce.com", "access_token"} {
		if bytes.Contains(raw.Value(), []byte(marker)) {
			t.Fatalf("KV value contains %q in plaintext", marker)
		}
	}
	got, rev, err := s.Load(ctx, "prod")
	if err != nil || got.AccessToken != rec.AccessToken || got.RefreshToken != rec.RefreshToken || rev == 0 {
		t.Fatalf("Load = %+v, %d, %v", got, rev, err)
	}

	// Another worker with the wrong key fails clearly, naming the fix.
	other := newKVStore(t, js, testCipher(t), time.Second)
	_, _, err = other.Load(ctx, "prod")
	if !errors.Is(err, ErrTokenKey) || !strings.Contains(err.Error(), EnvTokenKey) || !strings.Contains(err.Error(), `account "prod"`) {
		t.Fatalf("wrong key err = %v", err)
	}
	// ...and so does its cache, without calling Salesforce.
	f := newFakeTokenEndpoint(t, "rt", false)
	_, ts := newTestCache(t, f.account("prod", FlowWebServer), CacheOptions{Store: other})
	if _, err := ts.Token(ctx); !errors.Is(err, ErrTokenKey) || f.requests.Load() != 0 {
		t.Fatalf("cache with wrong key: err = %v, requests = %d", err, f.requests.Load())
	}

	// CAS: a stale revision is refused.
	if _, err := s.Save(ctx, "prod", rec, rev+5); !errors.Is(err, errConflict) {
		t.Fatalf("stale Save err = %v", err)
	}
	if _, err := NewKVStore(ctx, js, KVStoreConfig{}); !errors.Is(err, ErrNoTokenKey) {
		t.Fatalf("NewKVStore without key err = %v", err)
	}
}

func TestKVLeaseExclusiveAndTakeover(t *testing.T) {
	t.Parallel()
	ns := workertest.StartNATS(t)
	_, js1 := workertest.JetStream(t, ns)
	nc2, js2 := workertest.JetStream(t, ns)
	c := testCipher(t)
	s1 := newKVStore(t, js1, c, 300*time.Millisecond)
	s2 := newKVStore(t, js2, c, 300*time.Millisecond)
	ctx := ctxT(t)

	l1, err := s1.Lease(ctx, "prod")
	if err != nil {
		t.Fatal(err)
	}
	// Released lease: a waiter gets it as soon as it is deleted.
	got := make(chan Lease, 1)
	go func() {
		l, err := s2.Lease(ctx, "prod")
		if err != nil {
			t.Error(err)
		}
		got <- l
	}()
	l1.Release(ctx)
	l2 := <-got
	// The holder (process 2) dies: its connection closes, never releasing.
	_ = l2
	nc2.Close()
	// Process 1 takes the lease over once it has gone stale.
	start := time.Now()
	l3, err := s1.Lease(ctx, "prod")
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(start) < 200*time.Millisecond {
		t.Fatalf("lease taken over before it expired")
	}
	// The dead holder's late release must not delete the new lease.
	<-l2.Lost()          // its renewals failed: its keep-alive has stopped
	l2.(*kvLease).s = s1 // its own connection is closed; use a live one
	l2.Release(ctx)
	kv, _ := js1.KeyValue(ctx, DefaultBucket)
	if _, err := kv.Get(ctx, "lease.prod"); err != nil {
		t.Fatalf("takeover lease was deleted by the stale holder: %v", err)
	}
	l3.Release(ctx)
	if _, err := kv.Get(ctx, "lease.prod"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("lease not released: %v", err)
	}
}

// TestKVHolderDiesMidRefresh: worker A takes the lease and hangs in its
// token request until killed; worker B waits, takes over the stale lease,
// and refreshes.
func TestKVHolderDiesMidRefresh(t *testing.T) {
	t.Parallel()
	ns := workertest.StartNATS(t)
	ncA, jsA := workertest.JetStream(t, ns)
	_, jsB := workertest.JetStream(t, ns)
	c := testCipher(t)
	f := newFakeTokenEndpoint(t, "rt", false)
	a := f.account("prod", FlowWebServer)
	a.RefreshToken = "rt"

	hang := make(chan struct{})
	var hangOnce sync.Once
	f.mu.Lock()
	f.gate = hang
	f.mu.Unlock()

	_, tsA := newTestCache(t, a, CacheOptions{Store: newKVStore(t, jsA, c, 400*time.Millisecond)})
	ctxA, killA := context.WithCancel(context.Background())
	aDone := make(chan error, 1)
	go func() { _, err := tsA.Token(ctxA); aDone <- err }()
	// Wait until A is inside its token request (holding the lease).
	kv, _ := jsB.KeyValue(ctxT(t), DefaultBucket)
	w, _ := kv.Watch(ctxT(t), "lease.prod")
	for e := range w.Updates() {
		if e != nil && e.Operation() == jetstream.KeyValuePut {
			break
		}
	}
	_ = w.Stop()
	// "Kill" A: its caller gives up and its NATS connection drops, so it
	// can neither renew nor release the lease.
	killA()
	ncA.Close()

	// B's token requests go through.
	f.mu.Lock()
	f.gate = nil
	f.mu.Unlock()
	_, tsB := newTestCache(t, a, CacheOptions{Store: newKVStore(t, jsB, c, 400*time.Millisecond)})
	tok, err := tsB.Token(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken == "" {
		t.Fatal("no token")
	}
	if err := <-aDone; err == nil {
		t.Fatal("A's caller should have given up")
	}
	hangOnce.Do(func() { close(hang) }) // let A's stuck request finish
}

// TestKVExactlyOneRefreshAcrossProcesses runs four caches on four NATS
// connections against the fake endpoint; the sim version is in sim_test.go.
func TestKVExactlyOneRefreshAcrossProcesses(t *testing.T) {
	t.Parallel()
	for _, rotate := range []bool{false, true} {
		t.Run(map[bool]string{false: "no rotation", true: "rotation"}[rotate], func(t *testing.T) {
			t.Parallel()
			ns := workertest.StartNATS(t)
			c := testCipher(t)
			f := newFakeTokenEndpoint(t, "rt", rotate)
			a := f.account("prod", FlowWebServer)
			a.RefreshToken = "rt"
			var sources []*TokenSource
			for range 4 {
				_, js := workertest.JetStream(t, ns)
				_, ts := newTestCache(t, a, CacheOptions{Store: newKVStore(t, js, c, 5*time.Second)})
				sources = append(sources, ts)
			}
			ctx := ctxT(t)
			var wg sync.WaitGroup
			for i := range 200 {
				wg.Go(func() {
					if _, err := sources[i%4].Token(ctx); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if n := f.requests.Load(); n != 1 {
				t.Fatalf("token requests = %d, want exactly 1", n)
			}
		})
	}
}
