package worker

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks"
	"github.com/sfblocks/sfblocks/blocks/salesforce"
	"github.com/sfblocks/sfblocks/blocks/salesforce/breaker"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

// simLimits reads /limits of the simulator, as serve's accounts do.
func simLimits(t *testing.T, sim *sfsim.Server) func(ctx context.Context, account string) (int, int, error) {
	t.Helper()
	c, err := salesforce.New(salesforce.StaticToken(sim.IssueToken("").AccessToken, sim.InstanceURL()))
	if err != nil {
		t.Fatal(err)
	}
	return func(ctx context.Context, _ string) (int, int, error) {
		lim, err := c.Limits(ctx)
		if err != nil {
			return 0, 0, err
		}
		d := lim["DailyApiRequests"]
		return d.Max - d.Remaining, d.Max, nil
	}
}

func startBudget(t *testing.T, e *exo, cfg BudgetConfig) *Budget {
	t.Helper()
	b, err := NewBudget(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := b.Start(ctx, e.js); err != nil {
		t.Fatal(err)
	}
	return b
}

// With the org's usage in the reserve, durable jobs wait (no attempt, no
// record), synchronous ones run, the reserve is logged once; when the
// org's counter comes down, the waiting jobs complete by themselves, each
// once.
func TestBudgetReserveKeepsDurableJobsWaiting(t *testing.T) {
	t.Parallel()
	const waiting = 20
	e := newExo(t)
	_, limit := e.sim.APIUsage()
	e.sim.SetAPIUsage(limit - limit/20) // 95% used: inside a 10% reserve
	e.budget = startBudget(t, e, BudgetConfig{Reserve: 0.10, Accounts: []string{"a"}, Worker: "w1",
		Poll: 300 * time.Millisecond, Limits: simLimits(t, e.sim), Logger: e.logs.Logger(-1)})
	workertest.WaitFor(t, 10*time.Second, "the budget seeded from /limits", func() bool { return e.budget.State("a").InReserve })
	m := newTestMetrics(t)
	e.worker(nil, exoFast, WithBudget(e.budget), WithMetrics(m))

	next := e.replies("reply.budget")
	for i := range waiting {
		id := fmt.Sprintf("budget-%d", i)
		e.publish(sfblocks.Insert, "a", id, taskJob(id, fmt.Sprintf("budget %d", i)), "reply.budget")
	}
	workertest.WaitFor(t, 10*time.Second, "every durable job parked", func() bool {
		return counterValue(t, m.Parked.WithLabelValues(string(sfblocks.Insert), "budget")) == waiting
	})

	// Synchronous jobs of the same account run meanwhile.
	if r := e.request(sfblocks.Insert, taskJob("budget-sync", "budget sync")); r.Status != sfblocks.StatusOK {
		t.Fatalf("sync insert in the reserve: %+v %+v", r, r.Error)
	}
	if r := e.request(sfblocks.Search, `{"query":"SELECT Id FROM Contact LIMIT 1"}`); r.Status != sfblocks.StatusOK {
		t.Fatalf("sync search in the reserve: %+v %+v", r, r.Error)
	}
	time.Sleep(time.Second) // the parked jobs are pulled and held, not run
	for i := range waiting {
		if ids := e.records(fmt.Sprintf("budget %d", i)); len(ids) != 0 {
			t.Fatalf("durable job %d ran in the reserve: %v", i, ids)
		}
	}
	if n := strings.Count(e.logs.String(), "entered the reserve"); n != 1 {
		t.Errorf("the reserve was logged %d times, want once for the account", n)
	}

	// The rolling window comes down: the jobs resume on their own.
	e.sim.SetAPIUsage(0)
	replies := next(waiting)
	for _, r := range replies {
		if r.Status != sfblocks.StatusOK || r.Attempt != 1 {
			t.Errorf("job %s after the reserve: status %s attempt %d %+v", r.ID, r.Status, r.Attempt, r.Error)
		}
	}
	for i := range waiting {
		if ids := e.records(fmt.Sprintf("budget %d", i)); len(ids) != 1 {
			t.Errorf("job %d: %d records, want 1", i, len(ids))
		}
	}
	if !strings.Contains(e.logs.String(), "below its reserve again") {
		t.Error("leaving the reserve was not logged")
	}
}

// One worker's reading is the fleet's: a worker that made no call learns
// that the account is in its reserve, and that it left it.
func TestBudgetIsSharedByTheFleet(t *testing.T) {
	t.Parallel()
	e := newExo(t)
	one := startBudget(t, e, BudgetConfig{Reserve: 0.10, Worker: "w1"})
	two := startBudget(t, e, BudgetConfig{Reserve: 0.10, Worker: "w2"})
	one.Observe("a", 9500, 10000)
	workertest.WaitFor(t, 10*time.Second, "the other worker sees the reserve", func() bool { return two.State("a").InReserve })
	if st := two.State("a"); st.Used != 9500 || st.Max != 10000 || st.ReserveFrom != 9000 {
		t.Errorf("shared state %+v", st)
	}
	// Hysteresis: just below the reserve is not out of it.
	one.Observe("a", 8950, 10000)
	time.Sleep(2 * budgetPublishInterval)
	if !two.State("a").InReserve {
		t.Error("left the reserve 50 requests under its start; want 1% of the allocation")
	}
	one.Observe("a", 100, 10000)
	workertest.WaitFor(t, 10*time.Second, "the other worker sees the reserve end", func() bool { return !two.State("a").InReserve })
}

func TestBudgetConfig(t *testing.T) {
	t.Parallel()
	for _, r := range []float64{-0.1, 1, 2} {
		if _, err := NewBudget(BudgetConfig{Reserve: r}); err == nil {
			t.Errorf("reserve %v accepted", r)
		}
	}
	b, err := NewBudget(BudgetConfig{})
	if err != nil {
		t.Fatal(err)
	}
	b.Observe("a", 15000, 15000)
	if st := b.State("a"); st.InReserve || st.ReserveFrom != 0 || !st.Exhausted() {
		t.Errorf("reserve 0 (off): %+v", st)
	}
	var nilBudget *Budget
	nilBudget.Observe("a", 1, 2) // no panic
	if nilBudget.defers("a") {
		t.Error("a nil budget defers")
	}
}

// The two REQUEST_LIMIT_EXCEEDED answers are two situations: the daily
// allocation is spent (durable jobs wait for usage to come down; the
// breaker counts it), or the org runs its limit of long requests (a retry
// in seconds; the breaker does not count it).
func TestDailyAndConcurrentLimitsAreHandledApart(t *testing.T) {
	t.Parallel()
	t.Run("concurrent", func(t *testing.T) {
		t.Parallel()
		e := newExo(t)
		e.sim = workertest.StartSim(t, sfsim.Options{ConcurrentRequestLimit: 1, LongRequestThreshold: 100 * time.Millisecond})
		set, err := breaker.NewSet(breaker.Settings{ConsecutiveFailures: 2})
		if err != nil {
			t.Fatal(err)
		}
		e.breakers = set
		e.budget = startBudget(t, e, BudgetConfig{Reserve: 0.10, Worker: "w1"})
		w := e.worker(nil, exoFast, WithBudget(e.budget))
		_ = w
		// One long request holds the org's only long-request slot: a create
		// whose answer the org withholds for 3 s.
		mustDo(t, e.sim.Faults().Set(sfsim.FaultConfig{CommitThenDrop: &sfsim.CommitThenDrop{Rate: 1, Mode: sfsim.CommitWithhold,
			Delay: sfsim.Duration(3 * time.Second)}}))
		held := make(chan *sfblocks.Reply, 1)
		go func() { held <- e.request(sfblocks.Insert, taskJob("long", "long request")) }()
		workertest.WaitFor(t, 10*time.Second, "the long request committed", func() bool { return len(e.records("long request")) == 1 })
		mustDo(t, e.sim.Faults().Set(sfsim.FaultConfig{}))
		time.Sleep(200 * time.Millisecond) // it is now long-running

		r := e.request(sfblocks.Search, `{"id":"sync-c","query":"SELECT Id FROM Contact LIMIT 1"}`)
		if r.Status != sfblocks.StatusFailed || r.Error.Code != sfblocks.CodeRateLimited || !r.Error.Retryable ||
			!strings.Contains(r.Error.Message, "concurrent") || blocks.LimitOf(r) != blocks.LimitConcurrent {
			t.Fatalf("sync search at the concurrent limit: %+v %+v (limit %v)", r, r.Error, blocks.LimitOf(r))
		}
		for range 3 {
			e.request(sfblocks.Search, `{"query":"SELECT Id FROM Contact LIMIT 1"}`)
		}
		if st := set.For("a").State(); st != breaker.StateClosed {
			t.Errorf("breaker %s after concurrent-limit refusals; they are not the org failing", st)
		}
		// A durable job refused now is retried within seconds and lands once.
		next := e.replies("reply.conc")
		e.publish(sfblocks.Insert, "a", "conc", taskJob("conc", "after the long request"), "reply.conc")
		if r := next(1)[0]; r.Status != sfblocks.StatusOK {
			t.Errorf("durable job after the concurrent limit: %+v %+v", r, r.Error)
		}
		if ids := e.records("after the long request"); len(ids) != 1 {
			t.Errorf("%d records, want 1", len(ids))
		}
		if e.budget.State("a").InReserve {
			t.Error("the concurrent limit put the account in its reserve")
		}
		<-held
		if n := e.sim.Stats().ConcurrentLimitExceeded; n == 0 {
			t.Error("the simulator refused nothing for the concurrent limit")
		}
	})
	t.Run("daily", func(t *testing.T) {
		t.Parallel()
		e := newExo(t)
		e.sim = workertest.StartSim(t, sfsim.Options{DailyAPILimit: 200})
		e.budget = startBudget(t, e, BudgetConfig{Reserve: 0.10, Worker: "w1", Poll: 200 * time.Millisecond, Limits: simLimits(t, e.sim)})
		m := newTestMetrics(t)
		e.worker(nil, exoFast, WithBudget(e.budget), WithMetrics(m))
		e.sim.SetAPIUsage(200)
		r := e.request(sfblocks.Search, `{"query":"SELECT Id FROM Contact LIMIT 1"}`)
		if r.Status != sfblocks.StatusFailed || r.Error.Code != sfblocks.CodeRateLimited || blocks.LimitOf(r) != blocks.LimitDaily ||
			!strings.Contains(r.ResultBody, "TotalRequests") {
			t.Fatalf("sync search past the daily limit: %+v %+v", r, r.Error)
		}
		if st := e.budget.State("a"); !st.Exhausted() || !st.InReserve {
			t.Fatalf("budget after the daily limit: %+v", st)
		}
		next := e.replies("reply.daily")
		e.publish(sfblocks.Insert, "a", "daily", taskJob("daily", "after the daily limit"), "reply.daily")
		workertest.WaitFor(t, 10*time.Second, "the durable job parked", func() bool {
			return counterValue(t, m.Parked.WithLabelValues(string(sfblocks.Insert), "budget")) == 1
		})
		e.sim.SetAPIUsage(0)
		if r := next(1)[0]; r.Status != sfblocks.StatusOK || r.Attempt != 1 {
			t.Errorf("durable job after the limit came back: %+v %+v", r, r.Error)
		}
	})
}
