package bench

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

// TestRunLoad drives the closed-loop load through the baseline (in this
// process) against the simulator, the way a run does.
func TestRunLoad(t *testing.T) {
	t.Parallel()
	ns := workertest.StartNATS(t)
	sim := workertest.StartSim(t, sfsim.Options{})
	serveBaseline(t, ns, sim, nil)
	send := syncSender(workertest.Connect(t, ns), sfblocks.DefaultPrefix)

	var mu sync.Mutex
	var events []bool
	var open, closed sfsim.Stats
	spec := loadSpec{clients: 4, warmup: 100 * time.Millisecond, duration: 500 * time.Millisecond, mix: Mix{Search: 0.5}, timeout: 5 * time.Second}
	res := runLoad(t.Context(), spec, send, func(isOpen bool) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, isOpen)
		if isOpen {
			open = sim.Stats()
		} else {
			closed = sim.Stats()
		}
	})

	if !slices.Equal(events, []bool{true, false}) {
		t.Fatalf("window events %v, want it opened then closed once", events)
	}
	if res.window < spec.duration {
		t.Errorf("window %v, shorter than the %v asked", res.window, spec.duration)
	}
	if len(res.errors) != 0 {
		t.Errorf("failed jobs: %v", res.errors)
	}
	if res.jobs() == 0 || !slices.IsSorted(res.latencies) {
		t.Fatalf("%d jobs, latencies sorted %v; want some, sorted", res.jobs(), slices.IsSorted(res.latencies))
	}
	// Both blocks ran in the window, about one Salesforce call each.
	queries := closed.APICalls["query"] - open.APICalls["query"]
	upserts := closed.APICalls["upsert"] - open.APICalls["upsert"]
	if queries == 0 || upserts == 0 {
		t.Errorf("%d queries and %d upserts in the window, want both", queries, upserts)
	}
	if calls := queries + upserts; calls < res.jobs()-int64(spec.clients) || calls > res.jobs()+int64(spec.clients) {
		t.Errorf("%d Salesforce calls for %d jobs, want one each give or take the jobs at the edges", calls, res.jobs())
	}
}

// TestRunLoadStopsWhenCancelled: an interrupt ends the load at once, and
// the jobs in flight are still awaited.
func TestRunLoadStopsWhenCancelled(t *testing.T) {
	t.Parallel()
	ns := workertest.StartNATS(t)
	sim := workertest.StartSim(t, sfsim.Options{})
	serveBaseline(t, ns, sim, nil)
	send := syncSender(workertest.Connect(t, ns), sfblocks.DefaultPrefix)

	ctx, cancel := context.WithCancel(t.Context())
	var inFlight, sent atomic.Int64
	counted := func(ctx context.Context, b sfblocks.Block, job []byte) string {
		inFlight.Add(1)
		sent.Add(1)
		defer inFlight.Add(-1)
		return send(ctx, b, job)
	}
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	runLoad(ctx, loadSpec{clients: 2, warmup: time.Minute, duration: time.Minute, mix: Mix{Search: 1}, timeout: 5 * time.Second},
		counted, func(bool) {})
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("runLoad took %v after the cancel, want it to stop at once", took)
	}
	if n := inFlight.Load(); n != 0 || sent.Load() == 0 {
		t.Errorf("runLoad returned with %d of %d jobs in flight, want none", n, sent.Load())
	}
}

// TestRunLoadSearches: by default every search is a statement of its own,
// so shared searches cannot answer two jobs with one call; with
// identicalSearches every search is the same.
func TestRunLoadSearches(t *testing.T) {
	t.Parallel()
	for _, identical := range []bool{false, true} {
		var mu sync.Mutex
		seen := map[string]int{}
		record := func(_ context.Context, b sfblocks.Block, job []byte) string {
			if b != sfblocks.Search {
				t.Errorf("block %s, want search", b)
			}
			mu.Lock()
			seen[string(job)]++
			mu.Unlock()
			return ""
		}
		spec := loadSpec{clients: 4, duration: 50 * time.Millisecond, mix: Mix{Search: 1}, identicalSearches: identical, timeout: time.Second}
		runLoad(t.Context(), spec, record, func(bool) {})
		jobs := 0
		for _, n := range seen {
			jobs += n
		}
		// The first searchLimits searches are all different, then the
		// LIMITs come round again.
		if want := min(jobs, searchLimits); !identical && len(seen) != want {
			t.Errorf("distinct searches: %d different jobs of %d, want %d", len(seen), jobs, want)
		}
		if identical && len(seen) != 1 {
			t.Errorf("identical searches: %d different jobs, want 1", len(seen))
		}
		if jobs == 0 {
			t.Errorf("identical %v: no job sent", identical)
		}
	}
}
