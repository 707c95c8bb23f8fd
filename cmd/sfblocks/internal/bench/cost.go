package bench

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
	"github.com/sfblocks/sfblocks/worker/client"
)

// PresetCost is the [Config.Preset] that measures what a job costs in
// Salesforce API requests when jobs arrive together, with the simulator
// at 100 ms: bursts of 1000 concurrent Inserts (synchronous and durable),
// bursts of 50 identical Searches, and one Insert at a time with and
// without coalescing.
const PresetCost = "cost"

// PresetAll runs [PresetFloors] and then [PresetCost], in one report.
const PresetAll = "all"

// The cost preset's scenarios.
const (
	scInsertBurst = "insert-1000"
	scSearchBurst = "search-50"
	scIdleOn      = "insert-idle"
	scIdleOff     = "insert-idle-off"
)

// costLatency is the simulator's latency in the cost preset.
const costLatency = 100 * time.Millisecond

// burstSpec is one cost scenario: bursts of size concurrent jobs, sent
// bursts times with a pause between (so that no burst rides the last).
type burstSpec struct {
	scenario scenario
	block    sfblocks.Block
	size     int
	bursts   int
	// identical sends one job size times (Searches); otherwise each job
	// of a burst is its own Insert.
	identical bool
	// extra are flags added to the workers' serve command line.
	extra []string
}

func costSpecs() []burstSpec {
	sc := func(name string, clients, maxInFlight int, m Mix) scenario {
		return scenario{Name: name, Latency: costLatency, LatencyMS: ms(costLatency), Clients: clients, Workers: 1,
			MaxInFlight: maxInFlight, mix: m, Mix: m.String()}
	}
	inserts, searches := Mix{Search: 0}, Mix{Search: 1}
	return []burstSpec{
		{scenario: sc(scInsertBurst, 1000, 1000, inserts), block: sfblocks.Insert, size: 1000, bursts: 3},
		{scenario: sc(scSearchBurst, 50, 256, searches), block: sfblocks.Search, size: 50, bursts: 20, identical: true},
		{scenario: sc(scIdleOn, 1, 256, inserts), block: sfblocks.Insert, size: 1, bursts: 50},
		{scenario: sc(scIdleOff, 1, 256, inserts), block: sfblocks.Insert, size: 1, bursts: 50,
			extra: []string{"--coalesce-calls", "0", "--share-searches=false"}},
	}
}

// costSteps is the order of one round's runs; the pairs that are compared
// alternate which goes first.
func costSteps(round int) []struct {
	spec int
	path Path
} {
	type step = struct {
		spec int
		path Path
	}
	var steps []step
	for _, p := range rotate([]Path{PathSync, PathDurable, PathBaseline}, round-1) {
		steps = append(steps, step{0, p})
	}
	steps = append(steps, step{1, PathSync})
	for _, i := range rotate([]int{2, 3}, round-1) {
		steps = append(steps, step{i, PathSync})
	}
	return steps
}

// runCost runs the cost preset and judges its floors into rep.
func runCost(ctx context.Context, e *env, cfg *Config, rep *report, onRun func(*runResult)) error {
	specs := costSpecs()
	for _, s := range specs {
		rep.Scenarios = append(rep.Scenarios, s.scenario)
	}
	for round := 1; round <= cfg.Rounds; round++ {
		for _, st := range costSteps(round) {
			r, err := runBursts(ctx, e, specs[st.spec], st.path, round, cfg)
			if err != nil {
				return fmt.Errorf("round %d, %s %s: %w", round, specs[st.spec].scenario.Name, st.path, err)
			}
			onRun(r)
			rep.Runs = append(rep.Runs, r)
		}
	}
	rep.judgeCost(cfg.Rounds)
	return nil
}

// runBursts starts one worker, warms it up, sends the bursts and measures
// them: latency of every job, errors, and the simulator's API calls during
// the bursts only.
func runBursts(ctx context.Context, e *env, spec burstSpec, path Path, round int, cfg *Config) (*runResult, error) {
	sc := spec.scenario
	if err := e.sim.Faults().SetLatency(sfsim.Latency{Distribution: sfsim.LatencyFixed, Fixed: sfsim.Duration(sc.Latency)}); err != nil {
		return nil, fmt.Errorf("set the simulator's latency: %w", err)
	}
	var procs []*proc
	var err error
	if path == PathBaseline {
		var p *proc
		if p, err = e.startBaseline(ctx, sc.MaxInFlight); err == nil {
			procs = []*proc{p}
		}
	} else {
		procs, err = e.startWorkers(ctx, workerSpec{count: 1, maxInFlight: sc.MaxInFlight, maxBacklog: sc.Clients,
			durable: path == PathDurable, extra: spec.extra})
	}
	if err != nil {
		return nil, err
	}
	defer stopAll(procs)
	send := syncSender(e.nc, sfblocks.DefaultPrefix)
	if path == PathDurable {
		c, err := client.New(e.nc, client.WithTimeout(cfg.JobTimeout))
		if err != nil {
			return nil, fmt.Errorf("durable client: %w", err)
		}
		send = durableSender(c)
	}
	run := fmt.Sprintf("r%d-%s-%s", round, sc.Name, path)
	job := func(burst, i int) []byte {
		if spec.block == sfblocks.Search {
			return []byte(searchJob)
		}
		id := run + "-" + strconv.Itoa(burst) + "-" + strconv.Itoa(i)
		return []byte(`{"id":"` + id + `","object":"Task","fields":{"Subject":"Cost ` + id + `","Status":"Completed"}}`)
	}
	// Warm up: the token, the connections and (durable) the consumers,
	// outside the measurement.
	for i := range 3 {
		if code := send(ctx, spec.block, job(-1, i)); code != "" {
			return nil, fmt.Errorf("warm-up job failed with %s; the worker's log ends:\n%s", code, procs[0].logTail())
		}
	}
	var (
		latencies []time.Duration
		errCodes  = map[string]int64{}
		calls     int64
		jobs      int64
		window    time.Duration
	)
	for b := range spec.bursts {
		before := e.sim.Stats()
		start := time.Now()
		lat, codes := burst(ctx, spec.size, cfg.JobTimeout, func(ctx context.Context, i int) string {
			return send(ctx, spec.block, job(b, i))
		})
		window += time.Since(start)
		calls += apiCalls(e.sim.Stats()) - apiCalls(before)
		latencies = append(latencies, lat...)
		jobs += int64(spec.size)
		for k, v := range codes {
			errCodes[k] += v
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		time.Sleep(sc.Latency) // nothing of this burst is still in flight
	}
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		if len(latencies) == 0 {
			return 0
		}
		return ms(latencies[min(len(latencies)-1, int(p*float64(len(latencies))))])
	}
	workers := 1
	if path == PathBaseline {
		workers = 0
	}
	r := &runResult{Round: round, Scenario: sc.Name, Path: path, Workers: workers, Clients: sc.Clients, MaxInFlight: sc.MaxInFlight,
		LatencyMS: sc.LatencyMS, Mix: sc.Mix, WindowS: window.Seconds(), Jobs: jobs,
		JobsPerSec: float64(len(latencies)) / window.Seconds(),
		P50MS:      pct(0.50), P90MS: pct(0.90), P99MS: pct(0.99),
		Errors: jobs - int64(len(latencies)), Bursts: spec.bursts, BurstSize: spec.size}
	if r.Errors > 0 {
		r.ErrorCodes = errCodes
	}
	r.SFCallsPerJob = float64(calls) / float64(jobs)
	r.SFCallsPerBurst = float64(calls) / float64(spec.bursts)
	if rss := procs[0].peakRSS(); rss >= 0 {
		mb := float64(rss) / (1 << 20)
		r.PeakRSSMB = &mb
	}
	return r, nil
}

// burst sends n jobs at the same moment and returns the latencies of those
// that succeeded and the error codes of the rest.
func burst(ctx context.Context, n int, timeout time.Duration, send func(ctx context.Context, i int) string) ([]time.Duration, map[string]int64) {
	var (
		mu    sync.Mutex
		lat   = make([]time.Duration, 0, n)
		codes = map[string]int64{}
		wg    sync.WaitGroup
		gate  = make(chan struct{})
	)
	for i := range n {
		wg.Go(func() {
			<-gate
			jctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			start := time.Now()
			code := send(jctx, i)
			took := time.Since(start)
			mu.Lock()
			defer mu.Unlock()
			if code != "" {
				codes[code]++
				return
			}
			lat = append(lat, took)
		})
	}
	close(gate)
	wg.Wait()
	return lat, codes
}

// judgeCost adds the cost preset's floors to the report. Calls per job
// and per burst are the worst round's (a cost must hold every time), the
// latencies the median round's.
func (rep *report) judgeCost(rounds int) {
	worst := func(scenario string, path Path, f func(*runResult) float64) (float64, bool) {
		v, errs := 0.0, false
		for _, r := range rep.Runs {
			if r.Scenario == scenario && r.Path == path {
				v = max(v, f(r))
				errs = errs || r.Errors > 0
			}
		}
		return v, errs
	}
	medianOf := func(scenario string, path Path, f func(*runResult) float64) float64 {
		var vs []float64
		for _, r := range rep.Runs {
			if r.Scenario == scenario && r.Path == path {
				vs = append(vs, f(r))
			}
		}
		return median(vs)
	}
	callsPerJob := func(r *runResult) float64 { return r.SFCallsPerJob }
	p99 := func(r *runResult) float64 { return r.P99MS }
	limitMS := 2 * ms(costLatency)
	judge := func(name string, measured float64, op string, limit float64, unit string, errs bool, note string) floor {
		pass := measured >= limit
		if op == "<=" {
			pass = measured <= limit
		}
		return floor{Name: name, Measured: measured, Op: op, Limit: limit, Unit: unit, Pass: pass && !errs, Errors: errs, Note: note}
	}
	for _, p := range []Path{PathSync, PathDurable} {
		calls, errs := worst(scInsertBurst, p, callsPerJob)
		rep.Floors = append(rep.Floors,
			judge(fmt.Sprintf("1000 concurrent %s Inserts, 100ms latency: SF API requests per Insert (worst round)", p), calls, "<=", 0.02, "", errs, ""),
			judge(fmt.Sprintf("1000 concurrent %s Inserts: p99 latency (median round)", p), medianOf(scInsertBurst, p, p99), "<=", limitMS, "ms", errs, "2 × the simulator's latency"))
	}
	// What this machine allows: the bare responder's p99 for the same
	// bursts (one Salesforce call per Insert, no ledger).
	base := medianOf(scInsertBurst, PathBaseline, p99)
	rep.Ratios = append(rep.Ratios, rep.p99Ratio("insert-1000 p99 sync/baseline", scInsertBurst, PathSync, PathBaseline, rounds),
		rep.p99Ratio("insert-1000 p99 durable/baseline", scInsertBurst, PathDurable, PathBaseline, rounds))
	for i := range rep.Floors {
		if f := &rep.Floors[i]; f.Unit == "ms" && base > 0 {
			f.Note += fmt.Sprintf("; the bare responder's p99 for the same bursts: %.0f ms", base)
		}
	}
	perBurst, errs := worst(scSearchBurst, PathSync, func(r *runResult) float64 { return r.SFCallsPerBurst })
	rep.Floors = append(rep.Floors, judge("bursts of 50 identical Searches: SF calls per burst (worst round)", perBurst, "<=", 1, "", errs, ""))
	idle := rep.latencyRatio("insert-idle p50 coalescing on/off", scIdleOn, scIdleOff, rounds)
	rep.Ratios = append(rep.Ratios, idle)
	_, errsOn := worst(scIdleOn, PathSync, callsPerJob)
	_, errsOff := worst(scIdleOff, PathSync, callsPerJob)
	rep.Floors = append(rep.Floors, judge("one Insert at a time: p50 latency with coalescing / without (median round)", idle.Median, "<=", 1.1, "",
		errsOn || errsOff, "the same within noise"))
}

// p99Ratio is the p99 latency of (scenario, a) over (scenario, b), per
// round.
func (rep *report) p99Ratio(name, scenario string, a, b Path, rounds int) ratio {
	out := ratio{Name: name}
	for round := 1; round <= rounds; round++ {
		x, y := rep.find(round, scenario, a), rep.find(round, scenario, b)
		if x != nil && y != nil && y.P99MS > 0 {
			out.PerRound = append(out.PerRound, x.P99MS/y.P99MS)
		}
	}
	out.Median = median(out.PerRound)
	return out
}

// latencyRatio is the p50 latency of scA over scB's, sync path, per round.
func (rep *report) latencyRatio(name, scA, scB string, rounds int) ratio {
	out := ratio{Name: name}
	for round := 1; round <= rounds; round++ {
		a, b := rep.find(round, scA, PathSync), rep.find(round, scB, PathSync)
		if a != nil && b != nil && b.P50MS > 0 {
			out.PerRound = append(out.PerRound, a.P50MS/b.P50MS)
		}
	}
	out.Median = median(out.PerRound)
	return out
}
