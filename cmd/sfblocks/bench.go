package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
	"github.com/sfblocks/sfblocks/worker"
	"github.com/sfblocks/sfblocks/worker/client"
)

// Paths the bench drives.
const (
	pathSync     = "sync"     // worker, micro request/reply
	pathDurable  = "durable"  // worker, JetStream work queue (client.DoDurable)
	pathBaseline = "baseline" // the bare responder of bench-baseline
)

// durableServeFlags turn on the durable path of the workers of a durable
// run. Synchronous runs start workers with serve's defaults.
var durableServeFlags = []string{"--durable=true"}

const benchSynopsis = `bench [flags]

Measures sfblocks under load. It starts an embedded NATS server, the
Salesforce simulator (with --latency added to every REST call) and the
workers as separate 'sfblocks serve' processes, then drives a closed-loop
load: --clients concurrent callers, each sending a job as soon as the last
one is answered, for --warmup and then --duration. The same load goes
through a bare baseline responder (the same HTTP calls, none of the worker's
validation, token cache, breaker, logging or metrics) so the results can be
read as a ratio. Paths are alternated within each round and rounds repeated
(--rounds), since shared machines are noisy; ratios are per round and their
median is reported.

For each run it prints jobs/s, p50/p90/p99 latency, errors, Salesforce
calls per job (simulator API calls in the window / jobs), token requests
(over the whole run, including start-up), CPU time per job of the worker
(or baseline) processes, the highest jobs-in-flight a worker reported, and
peak RSS (VmHWM, of the biggest process); CPU and RSS need Linux's /proc.
The workers log at --worker-log-level to files in a temporary directory.

  --preset floors runs the issue's five measurements and reports each
  against its floor (PASS/BELOW; not asserted):
    search-64   sync Search, 0 latency, 64 clients: sync/baseline >= 0.7,
                durable/sync >= 0.4
    inflight    100ms latency, 256 clients, one worker: >= 2300 jobs/s
    scale       100ms latency, 384 clients, --max-in-flight 64:
                4 workers / 1 worker >= 3.6
    rss         1000 jobs in flight in one worker (1s latency, 1000
                clients): peak RSS <= 100 MB

Examples:
  sfblocks bench --preset floors
  sfblocks bench --preset floors --duration 3s --rounds 1
  sfblocks bench --path sync,baseline --clients 64 --mix search=0.8,insert=0.2
  sfblocks bench --path sync --workers 4 --latency 100ms --clients 384 --max-in-flight 64 --format json`

// benchConfig is everything `sfblocks bench` can be told.
type benchConfig struct {
	preset      string
	paths       []string
	clients     int
	latency     time.Duration
	workers     int
	maxInFlight int
	duration    time.Duration
	warmup      time.Duration
	rounds      int
	mix         jobMix
	jsonFile    string
	format      string
	binary      string
	logLevel    string
	timeout     time.Duration
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg benchConfig
	fs := newFlagSet("bench", benchSynopsis, stderr)
	fs.StringVar(&cfg.preset, "preset", "", "run a preset instead of one scenario: floors")
	paths := fs.String("path", "sync,baseline", "comma-separated paths to drive, alternated within each round: sync, durable, baseline")
	fs.IntVar(&cfg.clients, "clients", 64, "concurrent clients (jobs in flight from the load generator)")
	fs.DurationVar(&cfg.latency, "latency", 0, "latency the simulator adds to every REST call")
	fs.IntVar(&cfg.workers, "workers", 1, "worker processes")
	fs.IntVar(&cfg.maxInFlight, "max-in-flight", worker.DefaultMaxInFlight, "--max-in-flight of each worker and of the baseline")
	fs.DurationVar(&cfg.duration, "duration", 5*time.Second, "measurement window of each run")
	fs.DurationVar(&cfg.warmup, "warmup", time.Second, "load before the window opens (at least twice the latency is used)")
	fs.IntVar(&cfg.rounds, "rounds", 3, "rounds; the paths alternate within each round")
	mix := fs.String("mix", "search=1", "job mix, e.g. search=0.8,insert=0.2 (inserts upsert Tasks on 4096 rotating external ids)")
	fs.StringVar(&cfg.jsonFile, "json", "", "also write the results as JSON to this file")
	fs.StringVar(&cfg.format, "format", "table", "output on stdout: table or json")
	fs.StringVar(&cfg.binary, "binary", "", "sfblocks binary started for the workers and the baseline (default: this executable)")
	fs.StringVar(&cfg.logLevel, "worker-log-level", "info", "--log-level of the workers (their logs go to files in the bench's temporary directory)")
	fs.DurationVar(&cfg.timeout, "job-timeout", 10*time.Second, "how long a client waits for one reply")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var err error
	if cfg.mix, err = parseMix(*mix); err != nil {
		return err
	}
	for p := range strings.SplitSeq(*paths, ",") {
		p = strings.TrimSpace(p)
		if p != pathSync && p != pathDurable && p != pathBaseline {
			return fmt.Errorf("--path %q: use sync, durable or baseline, comma-separated", p)
		}
		cfg.paths = append(cfg.paths, p)
	}
	switch {
	case cfg.clients < 1 || cfg.workers < 1 || cfg.maxInFlight < 1 || cfg.rounds < 1:
		return fmt.Errorf("--clients, --workers, --max-in-flight and --rounds must be positive")
	case cfg.duration <= 0 || cfg.warmup < 0 || cfg.latency < 0:
		return fmt.Errorf("--duration must be positive, --warmup and --latency not negative")
	case cfg.format != "table" && cfg.format != "json":
		return fmt.Errorf("--format %q: use table or json", cfg.format)
	case cfg.preset != "" && cfg.preset != "floors":
		return fmt.Errorf("--preset %q: the only preset is floors", cfg.preset)
	}
	if cfg.binary == "" {
		if cfg.binary, err = os.Executable(); err != nil {
			return fmt.Errorf("find this executable (give --binary): %w", err)
		}
	}

	env, err := startBenchEnv(cfg.binary, cfg.logLevel)
	if err != nil {
		return err
	}
	defer env.close()

	var report *benchReport
	if cfg.preset == "floors" {
		report, err = runFloors(ctx, env, &cfg, progress(stderr))
	} else {
		report, err = runCustom(ctx, env, &cfg, progress(stderr))
	}
	if report == nil {
		return err
	}
	if cfg.format == "json" {
		out, _ := json.MarshalIndent(report, "", "  ")
		fmt.Fprintln(stdout, string(out))
	} else {
		report.writeTable(stdout)
	}
	if cfg.jsonFile != "" {
		out, _ := json.MarshalIndent(report, "", "  ")
		if werr := os.WriteFile(cfg.jsonFile, append(out, '\n'), 0o644); werr != nil && err == nil {
			err = werr
		}
	}
	return err
}

// progress returns a printer of one line per run on stderr, so a long run
// shows it is alive.
func progress(w io.Writer) func(r *runResult) {
	return func(r *runResult) {
		fmt.Fprintf(w, "round %d %-9s %-8s %8.0f jobs/s p99 %7.1fms errors %d\n", r.Round, r.Scenario, r.Path, r.JobsPerSec, r.P99MS, r.Errors)
	}
}

// scenario is one load shape; a run is a scenario driven through one path.
type scenario struct {
	Name        string        `json:"name"`
	Latency     time.Duration `json:"-"`
	LatencyMS   float64       `json:"latency_ms"`
	Clients     int           `json:"clients"`
	Workers     int           `json:"workers"`
	MaxInFlight int           `json:"max_in_flight"`
	Mix         string        `json:"mix"`
	mix         jobMix
}

// runResult is one run's measurements.
type runResult struct {
	Round         int              `json:"round"`
	Scenario      string           `json:"scenario"`
	Path          string           `json:"path"`
	Workers       int              `json:"workers"`
	Clients       int              `json:"clients"`
	MaxInFlight   int              `json:"max_in_flight"`
	LatencyMS     float64          `json:"latency_ms"`
	Mix           string           `json:"mix"`
	WindowS       float64          `json:"window_s"`
	Jobs          int64            `json:"jobs"`
	JobsPerSec    float64          `json:"jobs_per_s"`
	P50MS         float64          `json:"p50_ms"`
	P90MS         float64          `json:"p90_ms"`
	P99MS         float64          `json:"p99_ms"`
	Errors        int64            `json:"errors"`
	ErrorCodes    map[string]int64 `json:"error_codes,omitempty"`
	SFCallsPerJob float64          `json:"sf_calls_per_job"`
	TokenRequests int64            `json:"token_requests"`
	// PeakRSSMB is the highest VmHWM among the run's worker (or baseline)
	// processes, in MiB; null where /proc is not available.
	PeakRSSMB *float64 `json:"peak_rss_mb"`
	// CPUPerJobUS is the CPU time (user + system) the run's worker (or
	// baseline) processes used in the window, per job, in microseconds;
	// null where /proc is not available. The load generator, NATS server
	// and simulator (the bench process) are not in it.
	CPUPerJobUS *float64 `json:"cpu_us_per_job"`
	// MaxJobsInFlight is the highest sfblocks_jobs_in_flight a worker
	// reported while sampled during the window (worker paths only).
	MaxJobsInFlight int `json:"max_jobs_in_flight,omitempty"`
}

// runOne starts the processes of one run, drives the load and stops them.
func runOne(ctx context.Context, env *benchEnv, sc scenario, path string, round int, cfg *benchConfig) (*runResult, error) {
	if err := env.sim.Faults().SetLatency(sfsim.Latency{Distribution: sfsim.LatencyFixed, Fixed: sfsim.Duration(sc.Latency)}); err != nil {
		return nil, err
	}
	before := env.sim.Stats()
	var procs []*proc
	var err error
	if path == pathBaseline {
		var p *proc
		p, err = env.startBaseline(ctx, sc.MaxInFlight)
		procs = []*proc{p}
	} else {
		procs, err = env.startWorkers(ctx, workerSpec{count: sc.Workers, maxInFlight: sc.MaxInFlight, maxBacklog: sc.Clients, durable: path == pathDurable})
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
	if path == pathDurable {
		c, err := client.New(env.nc, client.WithTimeout(cfg.timeout))
		if err != nil {
			return nil, err
		}
		send = durableSender(c)
	} else {
		send = syncSender(env.nc, sfblocks.DefaultPrefix)
	}

	warmup := max(cfg.warmup, 2*sc.Latency)
	var windowStart, windowEnd sfsim.Stats
	var cpuStart, cpuEnd time.Duration
	sampler := newInFlightSampler(procs, path != pathBaseline)
	load := runLoad(ctx, loadSpec{clients: sc.Clients, warmup: warmup, duration: cfg.duration, mix: sc.mix, timeout: cfg.timeout},
		send, func(open bool) {
			if open {
				windowStart = env.sim.Stats()
				cpuStart = cpuTimes(procs)
				sampler.start()
			} else {
				windowEnd = env.sim.Stats()
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
	after := env.sim.Stats()

	r := &runResult{
		Round: round, Scenario: sc.Name, Path: path, Workers: sc.Workers, Clients: sc.Clients,
		MaxInFlight: sc.MaxInFlight, LatencyMS: sc.LatencyMS, Mix: sc.Mix,
		WindowS: load.window.Seconds(), Jobs: load.jobs(), Errors: load.jobs() - int64(len(load.latencies)),
		P50MS: ms(load.percentile(0.50)), P90MS: ms(load.percentile(0.90)), P99MS: ms(load.percentile(0.99)),
		TokenRequests:   after.TokenRequests - before.TokenRequests,
		MaxJobsInFlight: sampler.max(),
	}
	if path == pathBaseline {
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
	procs []*proc
	on    bool
	done  chan struct{}
	out   chan int
}

func newInFlightSampler(procs []*proc, on bool) *inFlightSampler {
	return &inFlightSampler{procs: procs, on: on, done: make(chan struct{}), out: make(chan int, 1)}
}

func (s *inFlightSampler) start() {
	if !s.on {
		return
	}
	go func() {
		best := 0
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-s.done:
				s.out <- best
				return
			case <-t.C:
				for _, p := range s.procs {
					if n, err := p.inFlight(); err == nil {
						best = max(best, n)
					}
				}
			}
		}
	}()
}

func (s *inFlightSampler) stop() {
	if s.on {
		close(s.done)
	}
}

func (s *inFlightSampler) max() int {
	if !s.on {
		return 0
	}
	return <-s.out
}

// runCustom runs the scenario given by flags: each path once per round,
// the order rotating from round to round.
func runCustom(ctx context.Context, env *benchEnv, cfg *benchConfig, onRun func(*runResult)) (*benchReport, error) {
	sc := scenario{Name: "custom", Latency: cfg.latency, LatencyMS: ms(cfg.latency), Clients: cfg.clients,
		Workers: cfg.workers, MaxInFlight: cfg.maxInFlight, mix: cfg.mix, Mix: cfg.mix.String()}
	rep := &benchReport{Host: newHost(), Scenarios: []scenario{sc}}
	for round := 1; round <= cfg.rounds; round++ {
		for _, path := range rotate(cfg.paths, round-1) {
			r, err := runOne(ctx, env, sc, path, round, cfg)
			if err != nil {
				return rep, fmt.Errorf("round %d, %s: %w", round, path, err)
			}
			onRun(r)
			rep.Runs = append(rep.Runs, r)
		}
	}
	for _, pair := range [][2]string{{pathSync, pathBaseline}, {pathDurable, pathSync}, {pathDurable, pathBaseline}} {
		if slices.Contains(cfg.paths, pair[0]) && slices.Contains(cfg.paths, pair[1]) {
			rep.Ratios = append(rep.Ratios, rep.ratio(pair[0]+"/"+pair[1], sc.Name, pair[0], sc.Name, pair[1], cfg.rounds))
		}
	}
	return rep, nil
}

// rotate returns s rotated left by n, so alternating runs take turns going
// first.
func rotate(s []string, n int) []string {
	if len(s) == 0 {
		return s
	}
	n %= len(s)
	return append(slices.Clone(s[n:]), s[:n]...)
}
