package worker

import (
	"fmt"
	"testing"
	"time"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks/salesforce/breaker"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

// One account's Salesforce is down with 3,000 of its durable Inserts
// waiting, far more than the consumer's MaxAckPending: another account's
// durable Insert and synchronous Search are answered meanwhile, and after
// the outage every waiting job completes, each with exactly one record.
func TestAnAccountsOutageDoesNotStallTheOthers(t *testing.T) {
	t.Parallel()
	const waiting = 3000
	e := newExo(t)
	e.simB = workertest.StartSim(t, sfsim.Options{})
	set, err := breaker.NewSet(breaker.Settings{OpenTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e.breakers = set
	cfg := exoFast
	cfg.MaxAckPending = 200
	m := newTestMetrics(t)
	e.worker(nil, cfg, WithMetrics(m), WithMaxInFlight(32))
	mustDo(t, e.sim.Faults().StartOutage(sfsim.OutageUnavailable, time.Hour, time.Now()))

	next := e.replies("reply.iso.a")
	for i := range waiting {
		id := fmt.Sprintf("iso-a-%d", i)
		e.publish(sfblocks.Insert, "a", id, fmt.Sprintf(`{"id":%q,"account":"a","object":"Task","fields":{"Subject":"iso a %d"}}`, id, i), "reply.iso.a")
	}
	workertest.WaitFor(t, 30*time.Second, "account a's breaker open", func() bool { return set.For("a").State() == breaker.StateOpen })
	time.Sleep(time.Second) // account a's jobs meet the open breaker

	// Account b, meanwhile: a durable insert and a synchronous search.
	nextB := e.replies("reply.iso.b")
	start := time.Now()
	e.publish(sfblocks.Insert, "b", "iso-b", `{"id":"iso-b","account":"b","object":"Task","fields":{"Subject":"iso b"}}`, "reply.iso.b")
	rb := nextB(1)[0]
	durableLatency := time.Since(start)
	if rb.Status != sfblocks.StatusOK || rb.Account != "b" {
		t.Fatalf("account b's durable insert = %+v %+v", rb, rb.Error)
	}
	start = time.Now()
	rs := e.request(sfblocks.Search, `{"account":"b","query":"SELECT Id FROM Contact LIMIT 1"}`)
	syncLatency := time.Since(start)
	if rs.Status != sfblocks.StatusOK {
		t.Fatalf("account b's sync search = %+v %+v", rs, rs.Error)
	}

	// The outage ends: every waiting job completes, once.
	e.sim.Faults().EndOutage()
	replies := next(waiting)
	seen := map[string]int{}
	for _, r := range replies {
		seen[r.ID]++
		if r.Status != sfblocks.StatusOK {
			t.Errorf("job %s after the outage: %+v %+v", r.ID, r, r.Error)
		}
	}
	for i := range waiting {
		if ids := e.records(fmt.Sprintf("iso a %d", i)); len(ids) != 1 {
			t.Errorf("job iso-a-%d: %d records, want 1", i, len(ids))
		}
	}
	t.Logf("account a down with %d durable inserts waiting (MaxAckPending %d): account b's durable insert answered in %v, its sync search in %v; %d jobs parked, all %d answered once the outage ended",
		waiting, cfg.MaxAckPending, durableLatency.Round(time.Millisecond), syncLatency.Round(time.Millisecond),
		int(counterValue(t, m.Parked.WithLabelValues(string(sfblocks.Insert), "breaker_open"))), len(seen))
}

// A slow org (every call takes 2 s) cannot take every in-flight slot: its
// jobs past its share are refused at once, not started, while another
// account's jobs run as usual.
func TestASlowOrgCannotTakeEverySlot(t *testing.T) {
	t.Parallel()
	e := newExo(t)
	e.simB = workertest.StartSim(t, sfsim.Options{})
	m := newTestMetrics(t)
	e.worker(nil, exoFast, WithMetrics(m), WithMaxInFlight(8), WithAccountShare(4))
	mustDo(t, e.sim.Faults().SetLatency(sfsim.Latency{Fixed: sfsim.Duration(2 * time.Second)}))
	results := make(chan *sfblocks.Reply, 20)
	for range 20 {
		go func() {
			results <- e.request(sfblocks.Search, `{"account":"a","query":"SELECT Id FROM Contact LIMIT 1"}`)
		}()
	}
	workertest.WaitFor(t, 10*time.Second, "account a's share taken", func() bool { return counterValue(t, m.Saturated) >= 10 })
	start := time.Now()
	rb := e.request(sfblocks.Search, `{"account":"b","query":"SELECT Id FROM Contact LIMIT 1"}`)
	took := time.Since(start)
	if rb.Status != sfblocks.StatusOK || took > time.Second {
		t.Errorf("account b's search = %+v %+v after %v, want ok at once", rb, rb.Error, took)
	}
	ok, refused := 0, 0
	for range 20 {
		r := <-results
		switch {
		case r.Status == sfblocks.StatusOK:
			ok++
		case r.Error.Code == sfblocks.CodeSalesforceUnavailable && r.Error.Retryable:
			refused++
		default:
			t.Errorf("account a's search = %+v %+v", r, r.Error)
		}
	}
	if ok < 4 || refused < 10 || ok+refused != 20 {
		t.Errorf("account a: %d ok, %d refused; want its share (4 at a time) served and the rest refused", ok, refused)
	}
	t.Logf("slow account a (2 s a call, share 4 of 8): %d ok, %d refused at once; account b's search answered in %v", ok, refused, took.Round(time.Millisecond))
}
