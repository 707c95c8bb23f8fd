package auth

import (
	"sync"
	"testing"
	"time"

	"github.com/sfblocks/sfblocks/blocks/salesforce"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

// The REST client's interfaces are satisfied structurally.
var (
	_ salesforce.TokenSource      = (*TokenSource)(nil)
	_ salesforce.TokenInvalidator = (*TokenSource)(nil)
)

// TestClientRecoversThroughCache: real data calls through the REST client
// across a forced expiry, two processes, one token request.
func TestClientRecoversThroughCache(t *testing.T) {
	t.Parallel()
	sim := workertest.StartSim(t, sfsim.Options{RotateRefreshTokens: true})
	ns := workertest.StartNATS(t)
	c := testCipher(t)
	a := simAccount(sim, "prod", FlowWebServer, sim.LoginURL())
	var clients []*salesforce.Client
	for i := range 2 {
		_, js := workertest.JetStream(t, ns)
		store := newKVStore(t, js, c, 5*time.Second)
		if i == 0 {
			seedAuthorized(t, sim, store, "prod")
		}
		_, ts := newTestCache(t, a, CacheOptions{Store: store})
		cl, err := salesforce.New(ts, salesforce.WithAPIVersion(a.APIVersion))
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, cl)
	}
	ctx := ctxT(t)
	for _, cl := range clients {
		if _, err := cl.Limits(ctx); err != nil {
			t.Fatal(err)
		}
	}
	before := sim.Stats().TokenRequests
	sim.ExpireAllSessions()
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			if _, err := clients[i%2].Limits(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if d := sim.Stats().TokenRequests - before; d != 1 {
		t.Fatalf("token requests = %d, want 1", d)
	}
}
