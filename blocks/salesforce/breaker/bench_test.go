package breaker_test

import (
	"errors"
	"testing"
	"time"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks"
	"github.com/sfblocks/sfblocks/blocks/salesforce/breaker"
)

// BenchmarkQuery compares a query answered by the healthy simulator with
// the same query refused by an open breaker, mapped to its job error as a
// synchronous job would reply with it:
//
//	go test -run '^$' -bench Query -benchmem ./blocks/salesforce/breaker/
func BenchmarkQuery(b *testing.B) {
	b.Run("healthy simulator", func(b *testing.B) {
		h := setup(b, breaker.Settings{}, "prod")
		a := h.accounts["prod"]
		ctx := ctxT(b)
		for b.Loop() {
			if err := query(ctx, a); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("open breaker", func(b *testing.B) {
		h := setup(b, breaker.Settings{OpenTimeout: time.Hour}, "prod")
		a := h.accounts["prod"]
		ctx := ctxT(b)
		if err := query(ctx, a); err != nil {
			b.Fatal(err)
		}
		if err := a.srv.Faults().StartOutage("unavailable", 0, time.Now()); err != nil {
			b.Fatal(err)
		}
		for a.b.State() != breaker.StateOpen {
			if err := query(ctx, a); err == nil {
				b.Fatal("query succeeded during an outage")
			}
		}
		sent := a.wire.n.Load()
		for b.Loop() {
			err := query(ctx, a)
			if !errors.Is(err, breaker.ErrOpen) {
				b.Fatalf("err = %v; want fail fast", err)
			}
			if je := blocks.AsError(err); je.Code != sfblocks.CodeSalesforceUnavailable {
				b.Fatalf("job error %s", je.Code)
			}
		}
		if a.wire.n.Load() != sent {
			b.Fatal("requests left while open")
		}
	})
}
