package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/worker/client"
)

// The jobs the load generator sends. The search finds one Contact of the
// seed data (Ada Byron). By default each search also carries its own
// LIMIT (distinctSearchJob, over searchLimits rotating values, far more
// than any run has in flight), which changes nothing of the answer but
// makes every search a statement of its own: the workers' shared searches
// (identical searches in flight share one Salesforce call) cannot answer
// two jobs with one call, so each job costs one call, as the baseline's
// do, and sync/baseline compares the cost of a job. With identical
// searches (searchJob) the bench measures the sharing instead. The insert
// is an upsert of a Task keyed on External_Id__c over a rotating set of
// insertKeys values: the first pass creates the records, later ones
// update them, so the simulator's in-memory org stays small however long
// the bench runs.
const (
	searchJob         = `{"query":"SELECT Id, Name FROM Contact WHERE Phone = '$(ANI)'","variables":{"ANI":"+1 415 555 0100"}}`
	distinctSearchJob = `{"query":"SELECT Id, Name FROM Contact WHERE Phone = '$(ANI)' LIMIT $(n)","variables":{"ANI":"+1 415 555 0100","n":%d}}`
	insertJob         = `{"object":"Task","fields":{"Subject":"Bench call $(n)","Status":"Completed"},"variables":{"n":"%d"},"external_id":{"field":"External_Id__c","value":"bench-$(n)"}}`
	insertKeys        = 4096
	// searchLimits stays below 1e6, which the baseline would paste as
	// "1e+06" (it prints numbers with fmt).
	searchLimits = 50000
)

// Mix is the share of each block in the load, e.g. search=0.8,insert=0.2.
type Mix struct {
	// Search is the share of searches, in [0,1]; the rest are inserts.
	Search float64
}

// ParseMix parses a mix given as weights, "search=W,insert=W" (either may
// be left out), as given to --mix.
func ParseMix(s string) (Mix, error) {
	var search, insert float64
	for part := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		f, err := strconv.ParseFloat(v, 64)
		if !ok || err != nil || f < 0 {
			return Mix{}, fmt.Errorf("--mix %q: write search=WEIGHT,insert=WEIGHT with non-negative weights", s)
		}
		switch k {
		case "search":
			search = f
		case "insert":
			insert = f
		default:
			return Mix{}, fmt.Errorf("--mix %q: unknown block %q (search or insert)", s, k)
		}
	}
	if search+insert == 0 {
		return Mix{}, fmt.Errorf("--mix %q: the weights add up to 0", s)
	}
	return Mix{Search: search / (search + insert)}, nil
}

// String returns the mix as shares, e.g. "search=0.8,insert=0.2"; it is
// how the report names it.
func (m Mix) String() string {
	return fmt.Sprintf("search=%.2g,insert=%.2g", m.Search, 1-m.Search)
}

// sendFunc sends one job and waits for its reply. It returns "" when the
// job succeeded (ok or no_data), else an error code.
type sendFunc func(ctx context.Context, block sfblocks.Block, job []byte) string

// syncSender sends requests on the synchronous subjects, for the worker and
// the baseline alike: the same request, and the same check of the reply
// (the micro error header, which the baseline sets on a non-2xx answer).
// It does not decode the reply, so the load generator costs both the same.
func syncSender(nc *nats.Conn, prefix string) sendFunc {
	subjects := map[sfblocks.Block]string{sfblocks.Search: prefix + ".search", sfblocks.Insert: prefix + ".insert"}
	return func(ctx context.Context, block sfblocks.Block, job []byte) string {
		msg, err := nc.RequestMsgWithContext(ctx, &nats.Msg{Subject: subjects[block], Data: job})
		switch {
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
			return "TIMEOUT"
		case errors.Is(err, nats.ErrNoResponders):
			return "NO_RESPONDERS"
		case err != nil:
			return "NATS_ERROR"
		}
		if code := msg.Header.Get("Nats-Service-Error"); code != "" {
			c, _, _ := strings.Cut(code, ":")
			return c
		}
		if code := msg.Header.Get("Nats-Service-Error-Code"); code != "" {
			return "HTTP_" + code
		}
		return ""
	}
}

// durableSender sends jobs through the durable path with the Go client.
func durableSender(c *client.Client) sendFunc {
	return func(ctx context.Context, block sfblocks.Block, job []byte) string {
		_, err := c.DoDurable(ctx, block, job)
		if err == nil {
			return ""
		}
		var be *sfblocks.Error
		if errors.As(err, &be) {
			return string(be.Code)
		}
		return "ERROR"
	}
}

// loadSpec is one closed-loop load: clients goroutines each send a job,
// wait for its reply and send the next, for warmup and then duration.
type loadSpec struct {
	clients  int
	warmup   time.Duration
	duration time.Duration
	mix      Mix
	// identicalSearches sends searchJob every time instead of
	// distinctSearchJob.
	identicalSearches bool
	timeout           time.Duration // per job
}

// loadResult is what the load generator measured in its window.
type loadResult struct {
	window    time.Duration
	latencies []time.Duration // of the jobs that completed in the window, sorted
	errors    map[string]int64
}

func (r *loadResult) jobs() int64 {
	n := int64(len(r.latencies))
	for _, e := range r.errors {
		n += e
	}
	return n
}

// percentile is the nearest-rank percentile of the latencies (p in [0,1]).
func (r *loadResult) percentile(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	i := int(p*float64(len(r.latencies))+0.5) - 1
	return r.latencies[min(max(i, 0), len(r.latencies)-1)]
}

// runLoad drives the load. onWindow is called when the measurement window
// opens and when it closes (with open=false), so the caller can snapshot
// counters at the same moments. Jobs count when they complete inside the
// window; at the end, jobs still in flight are awaited (so no run leaves
// work behind for the next) but not counted.
func runLoad(ctx context.Context, spec loadSpec, send sendFunc, onWindow func(open bool)) *loadResult {
	const (
		warming int32 = iota
		measuring
		stopping
	)
	var phase atomic.Int32
	var insertSeq, searchSeq atomic.Int64
	type clientResult struct {
		lat    []time.Duration
		errors map[string]int64
	}
	results := make([]clientResult, spec.clients)
	search := []byte(searchJob)
	var wg sync.WaitGroup
	for i := range spec.clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 0x5f3759df))
			res := &results[i]
			res.errors = map[string]int64{}
			for phase.Load() != stopping && ctx.Err() == nil {
				block, job := sfblocks.Search, search
				switch {
				case spec.mix.Search < 1 && rng.Float64() >= spec.mix.Search:
					block = sfblocks.Insert
					job = fmt.Appendf(nil, insertJob, insertSeq.Add(1)%insertKeys)
				case !spec.identicalSearches:
					job = fmt.Appendf(nil, distinctSearchJob, searchSeq.Add(1)%searchLimits+1)
				}
				// Cancelling ctx stops the loop, not the job in flight:
				// it is awaited so that no run leaves work to the next.
				jctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), spec.timeout)
				start := time.Now()
				code := send(jctx, block, job)
				took := time.Since(start)
				cancel()
				if phase.Load() != measuring {
					continue
				}
				if code != "" {
					res.errors[code]++
				} else {
					res.lat = append(res.lat, took)
				}
			}
		})
	}
	sleepCtx(ctx, spec.warmup)
	onWindow(true)
	start := time.Now()
	phase.Store(measuring)
	sleepCtx(ctx, spec.duration)
	phase.Store(stopping)
	window := time.Since(start)
	onWindow(false)
	wg.Wait()

	out := &loadResult{window: window, errors: map[string]int64{}}
	for _, r := range results {
		out.latencies = append(out.latencies, r.lat...)
		for k, v := range r.errors {
			out.errors[k] += v
		}
	}
	slices.Sort(out.latencies)
	return out
}

// sleepCtx sleeps for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
