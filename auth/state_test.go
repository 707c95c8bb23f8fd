package auth

import (
	"testing"

	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

func TestTokenSourceState(t *testing.T) {
	t.Parallel()
	sim := workertest.StartSim(t, sfsim.Options{})
	_, good := newTestCache(t, simAccount(sim, "good", FlowClientCredentials, sim.MyDomainURL()), CacheOptions{})
	_, bad := newTestCache(t, simAccount(sim, "bad", FlowClientCredentials, sim.LoginURL()), CacheOptions{})

	if st := good.State(); st.State != "none" || !st.IssuedAt.IsZero() {
		t.Fatalf("before any fetch: %+v", st)
	}
	tok, err := good.Token(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if st := good.State(); st.State != "valid" || st.IssuedAt.IsZero() || st.ErrorCode != "" {
		t.Fatalf("after a fetch: %+v", st)
	}
	good.Invalidate(tok)
	if st := good.State(); st.State != "rejected" {
		t.Fatalf("after Invalidate: %+v", st)
	}
	requests := sim.Stats().TokenRequests
	if _, err := bad.Token(ctxT(t)); err == nil {
		t.Fatal("client credentials on the login host succeeded")
	}
	if st := bad.State(); st.State != "failed" || st.ErrorCode != CodeAuthFailed {
		t.Fatalf("after a refused fetch: %+v", st)
	}
	if sim.Stats().TokenRequests != requests+1 {
		t.Errorf("State made token requests")
	}
}
