package auth

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/sfblocks/sfblocks/worker/workertest"
)

// TestKVStoreTakesBackItsOwnLostLease: a lease stored in this store's
// name (its Create landed, but the answer was lost in a JetStream leader
// change) is taken back at once; another holder's still blocks, and so
// does one this store holds.
func TestKVStoreTakesBackItsOwnLostLease(t *testing.T) {
	t.Parallel()
	ns := workertest.StartNATS(t)
	_, js := workertest.JetStream(t, ns)
	ctx := ctxT(t)
	s, err := NewKVStore(ctx, js, KVStoreConfig{Cipher: testCipher(t), LeaseTTL: time.Minute, Holder: "worker-a"})
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		holder string
		taken  bool
	}{{"worker-a", true}, {"worker-b", false}} {
		v, _ := json.Marshal(leaseValue{Holder: tc.holder, Expires: time.Now().Add(time.Minute).UnixMilli()})
		if _, err := kv.Put(ctx, leaseKey("prod"), v); err != nil {
			t.Fatal(err)
		}
		lctx, cancel := context.WithTimeout(ctx, time.Second)
		l, err := s.Lease(lctx, "prod")
		cancel()
		if (err == nil) != tc.taken {
			t.Errorf("lease held by %s: Lease = %v, %v; want taken %v", tc.holder, l, err, tc.taken)
		}
		if l != nil {
			l.Release(ctx)
		}
	}

	// A lease this store holds is no lost one: another Lease call of the
	// same store waits for its release.
	if err := kv.Purge(ctx, leaseKey("prod")); err != nil {
		t.Fatal(err)
	}
	held, err := s.Lease(ctx, "prod")
	if err != nil {
		t.Fatal(err)
	}
	lctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	if l, err := s.Lease(lctx, "prod"); err == nil {
		t.Error("a second Lease call of the holding store took the lease it holds")
		l.Release(ctx)
	}
	cancel()
	held.Release(ctx)
	lctx, cancel = context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	l, err := s.Lease(lctx, "prod")
	if err != nil {
		t.Fatalf("Lease after the release: %v", err)
	}
	l.Release(ctx)
}
