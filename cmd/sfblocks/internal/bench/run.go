package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
	"github.com/sfblocks/sfblocks/worker/client"
)

// Run runs the bench cfg describes and writes its report to out: a table,
// or JSON with cfg.Format [FormatJSON]; with cfg.JSONFile set, the JSON
// goes to that file too. When a run fails, the runs done so far are still
// reported, and the error says which run failed.
func Run(ctx context.Context, cfg Config, out io.Writer) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find this executable (give --binary): %w", err)
		}
		cfg.Binary = exe
	}
	e, err := startEnv(ctx, cfg.Binary, cfg.WorkerLogLevel, &cfg)
	if err != nil {
		return err
	}
	defer e.close()

	var rep *report
	switch cfg.Preset {
	case PresetFloors, PresetAll:
		rep, err = runFloors(ctx, e, &cfg, progress(cfg.Progress))
		if err == nil && cfg.Preset == PresetAll {
			err = runCost(ctx, e, &cfg, rep, progress(cfg.Progress))
		}
	case PresetCost:
		rep = &report{Host: newHost()}
		err = runCost(ctx, e, &cfg, rep, progress(cfg.Progress))
	default:
		rep, err = runCustom(ctx, e, &cfg, progress(cfg.Progress))
	}
	if rep == nil {
		return err
	}
	if werr := rep.write(out, cfg.Format); werr != nil && err == nil {
		err = werr
	}
	if cfg.JSONFile != "" {
		if werr := rep.writeJSONFile(cfg.JSONFile); werr != nil && err == nil {
			err = werr
		}
	}
	return err
}

// write writes the report in format (table or json).
func (rep *report) write(w io.Writer, format string) error {
	if format != FormatJSON {
		rep.writeTable(w)
		return nil
	}
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encode the report as JSON: %w", err)
	}
	_, err = fmt.Fprintln(w, string(data))
	return err
}

// writeJSONFile writes the report as JSON to path.
func (rep *report) writeJSONFile(path string) error {
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encode the report as JSON: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write the --json file (is its directory there and writable?): %w", err)
	}
	return nil
}

// progress returns a printer of one line per run on w, so a long bench
// shows it is alive; with w nil it prints nothing.
func progress(w io.Writer) func(r *runResult) {
	if w == nil {
		return func(*runResult) {}
	}
	return func(r *runResult) {
		fmt.Fprintf(w, "round %d %-9s %-8s %8.0f jobs/s p99 %7.1fms errors %d\n", r.Round, r.Scenario, r.Path, r.JobsPerSec, r.P99MS, r.Errors)
	}
}

// runCustom runs the scenario given by cfg: each path once per round, the
// order rotating from round to round.
func runCustom(ctx context.Context, e *env, cfg *Config, onRun func(*runResult)) (*report, error) {
	base := scenario{Name: "custom", Latency: cfg.Latency, LatencyMS: ms(cfg.Latency), Clients: cfg.Clients,
		Workers: cfg.Workers, MaxInFlight: cfg.MaxInFlight, mix: cfg.Mix, Mix: cfg.Mix.String(), IdenticalSearches: cfg.IdenticalSearches}
	// One scenario per NATS target; with a single target it keeps the
	// name "custom".
	scs := make([]scenario, len(e.targets))
	for i, t := range e.targets {
		scs[i] = base
		if len(e.targets) > 1 || t.external {
			scs[i].Name = t.name
		}
	}
	rep := &report{Host: newHost(), Scenarios: scs}
	for round := 1; round <= cfg.Rounds; round++ {
		for _, i := range rotate(indexes(len(e.targets)), round-1) {
			e.cur = e.targets[i]
			for _, path := range rotate(cfg.Paths, round-1) {
				r, err := runOne(ctx, e, scs[i], path, round, cfg)
				if err != nil {
					if len(scs) > 1 {
						return rep, fmt.Errorf("round %d, %s on %s: %w", round, path, scs[i].Name, err)
					}
					return rep, fmt.Errorf("round %d, %s: %w", round, path, err)
				}
				onRun(r)
				rep.Runs = append(rep.Runs, r)
			}
		}
	}
	for _, sc := range scs {
		rep.Ratios = append(rep.Ratios, customRatios(rep, sc.Name, cfg.Paths, cfg.Rounds)...)
	}
	if len(scs) == 2 {
		for _, p := range cfg.Paths {
			rep.Ratios = append(rep.Ratios, rep.ratio(string(p)+" "+scs[0].Name+"/"+scs[1].Name, scs[0].Name, p, scs[1].Name, p, cfg.Rounds))
		}
	}
	return rep, nil
}

// indexes returns 0..n-1.
func indexes(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// customRatios compares every pair of the driven paths that has a meaning:
// the worker against the baseline, and the durable path against both.
func customRatios(rep *report, scenario string, paths []Path, rounds int) []ratio {
	var out []ratio
	for _, pair := range [][2]Path{{PathSync, PathBaseline}, {PathDurable, PathSync}, {PathDurable, PathBaseline}} {
		if slices.Contains(paths, pair[0]) && slices.Contains(paths, pair[1]) {
			out = append(out, rep.ratio(string(pair[0])+"/"+string(pair[1]), scenario, pair[0], scenario, pair[1], rounds))
		}
	}
	return out
}

// rotate returns s rotated left by n, so alternating runs take turns going
// first.
func rotate[T any](s []T, n int) []T {
	if len(s) == 0 {
		return s
	}
	n %= len(s)
	return append(slices.Clone(s[n:]), s[:n]...)
}

// runOne starts the processes of one run, drives the load and stops them.
func runOne(ctx context.Context, e *env, sc scenario, path Path, round int, cfg *Config) (*runResult, error) {
	if err := e.sim.Faults().SetLatency(sfsim.Latency{Distribution: sfsim.LatencyFixed, Fixed: sfsim.Duration(sc.Latency)}); err != nil {
		return nil, fmt.Errorf("set the simulator's latency: %w", err)
	}
	before := e.sim.Stats()
	var procs []*proc
	var err error
	if path == PathBaseline {
		var p *proc
		p, err = e.startBaseline(ctx, sc.MaxInFlight)
		procs = []*proc{p}
	} else {
		procs, err = e.startWorkers(ctx, workerSpec{count: sc.Workers, maxInFlight: sc.MaxInFlight, maxBacklog: sc.Clients, durable: path == PathDurable})
	}
	if err != nil {
		return nil, err
	}
	stopped := false
	defer func() {
		if !stopped {
			stopAll(procs)
		}
	}()

	var send sendFunc
	if path == PathDurable {
		c, err := client.New(e.conn(), client.WithTimeout(cfg.JobTimeout))
		if err != nil {
			return nil, fmt.Errorf("durable client: %w", err)
		}
		send = durableSender(c)
	} else {
		send = syncSender(e.conn(), sfblocks.DefaultPrefix)
	}

	// The window opens once the simulated latency has been felt, so that
	// no run is measured while its clients are still ramping up.
	warmup := max(cfg.Warmup, 2*sc.Latency)
	var windowStart, windowEnd sfsim.Stats
	var cpuStart, cpuEnd time.Duration
	sampler := newInFlightSampler(procs, path != PathBaseline)
	load := runLoad(ctx, loadSpec{clients: sc.Clients, warmup: warmup, duration: cfg.Duration, mix: sc.mix,
		identicalSearches: sc.IdenticalSearches, timeout: cfg.JobTimeout},
		send, func(open bool) {
			if open {
				windowStart = e.sim.Stats()
				cpuStart = cpuTimes(procs)
				sampler.start(ctx)
			} else {
				windowEnd = e.sim.Stats()
				cpuEnd = cpuTimes(procs)
				sampler.stop()
			}
		})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var rss int64 = -1
	for _, p := range procs {
		if err := p.exited(); err != nil {
			return nil, err
		}
		rss = max(rss, p.peakRSS())
	}
	stopAll(procs)
	stopped = true
	after := e.sim.Stats()

	r := &runResult{
		Round: round, Scenario: sc.Name, Path: path, Workers: sc.Workers, Clients: sc.Clients,
		MaxInFlight: sc.MaxInFlight, LatencyMS: sc.LatencyMS, Mix: sc.Mix,
		WindowS: load.window.Seconds(), Jobs: load.jobs(), Errors: load.jobs() - int64(len(load.latencies)),
		P50MS: ms(load.percentile(0.50)), P90MS: ms(load.percentile(0.90)), P99MS: ms(load.percentile(0.99)),
		TokenRequests:   after.TokenRequests - before.TokenRequests,
		MaxJobsInFlight: sampler.max(),
	}
	if path == PathBaseline {
		r.Workers = 0
	}
	r.JobsPerSec = float64(len(load.latencies)) / load.window.Seconds()
	if r.Errors > 0 {
		r.ErrorCodes = load.errors
	}
	if r.Jobs > 0 {
		r.SFCallsPerJob = float64(apiCalls(windowEnd)-apiCalls(windowStart)) / float64(r.Jobs)
	}
	if cpuStart >= 0 && cpuEnd >= 0 && r.Jobs > 0 {
		us := float64((cpuEnd - cpuStart).Microseconds()) / float64(r.Jobs)
		r.CPUPerJobUS = &us
	}
	if rss >= 0 {
		mb := float64(rss) / (1 << 20)
		r.PeakRSSMB = &mb
	}
	return r, nil
}

// ms is d in milliseconds, to the microsecond.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// apiCalls is the simulator's REST calls of every kind (token requests are
// counted apart).
func apiCalls(s sfsim.Stats) int64 {
	var n int64
	for _, v := range s.APICalls {
		n += v
	}
	return n
}

// inFlightSampler polls the workers' in-flight gauge during the window.
type inFlightSampler struct {
	procs  []*proc
	on     bool
	cancel context.CancelFunc
	out    chan int
}

func newInFlightSampler(procs []*proc, on bool) *inFlightSampler {
	return &inFlightSampler{procs: procs, on: on, out: make(chan int, 1)}
}

// start polls every 250ms until stop, which also cuts a poll short.
func (s *inFlightSampler) start(ctx context.Context) {
	if !s.on {
		return
	}
	ctx, s.cancel = context.WithCancel(ctx)
	go func() {
		best := 0
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				s.out <- best
				return
			case <-t.C:
				for _, p := range s.procs {
					if n, err := p.inFlight(ctx); err == nil {
						best = max(best, n)
					}
				}
			}
		}
	}()
}

func (s *inFlightSampler) stop() {
	if s.on {
		s.cancel()
	}
}

// max is the highest gauge seen; it waits for the poller to end.
func (s *inFlightSampler) max() int {
	if !s.on {
		return 0
	}
	return <-s.out
}
