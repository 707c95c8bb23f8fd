package main

import (
	"context"
	"io"

	"github.com/sfblocks/sfblocks/cmd/sfblocks/internal/bench"
)

// benchSynopsis is the help text of bench, before its flags.
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
    search-64   sync Search, 0 latency, 64 clients: sync/baseline >= 0.85,
                durable/sync >= 0.6
    inflight    100ms latency, 256 clients, one worker: >= 2300 jobs/s
    scale       100ms latency, 384 clients, --max-in-flight 64:
                4 workers / 1 worker >= 3.6
    rss         1000 jobs in flight in one worker (1s latency, 1000
                clients): peak RSS <= 64 MB

  --preset cost measures what a job costs in Salesforce API requests,
  with the simulator at 100ms, one worker (reported, not asserted):
    insert-1000      bursts of 1000 concurrent Inserts, sync and durable:
                     SF calls per Insert <= 0.02, p99 <= 200ms, no errors
    search-50        bursts of 50 identical Searches: 1 SF call per burst
    insert-idle(-off) one Insert at a time, coalescing on and off:
                     p50 on/off <= 1.1
  --preset all runs floors, then cost, in one report.

Examples:
  sfblocks bench --preset floors
  sfblocks bench --preset cost --rounds 1
  sfblocks bench --preset floors --duration 3s --rounds 1
  sfblocks bench --path sync,baseline --clients 64 --mix search=0.8,insert=0.2
  sfblocks bench --path sync --workers 4 --latency 100ms --clients 384 --max-in-flight 64 --format json
  sfblocks bench --path durable --nats-url nats://n1:4222,nats://n2:4222,nats://n3:4222 --replicas 3 --compare-embedded`

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := benchFlags(args, stderr)
	if err != nil {
		return err
	}
	return bench.Run(ctx, cfg, stdout)
}

// benchFlags turns bench's flags into the package's config; every default
// comes from bench.DefaultConfig, except those of the two flags given as
// text (--path and --mix), which say the same. Progress lines go to stderr.
func benchFlags(args []string, stderr io.Writer) (bench.Config, error) {
	cfg := bench.DefaultConfig()
	fs := newFlagSet("bench", benchSynopsis, stderr)
	fs.StringVar(&cfg.Preset, "preset", cfg.Preset, "run a preset instead of one scenario: "+bench.PresetFloors+", "+bench.PresetCost+" or "+bench.PresetAll)
	paths := fs.String("path", "sync,baseline", "comma-separated paths to drive, alternated within each round: sync, durable, baseline")
	fs.IntVar(&cfg.Clients, "clients", cfg.Clients, "concurrent clients (jobs in flight from the load generator)")
	fs.DurationVar(&cfg.Latency, "latency", cfg.Latency, "latency the simulator adds to every REST call")
	fs.IntVar(&cfg.Workers, "workers", cfg.Workers, "worker processes")
	fs.IntVar(&cfg.MaxInFlight, "max-in-flight", cfg.MaxInFlight, "--max-in-flight of each worker and of the baseline")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "measurement window of each run")
	fs.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "load before the window opens (at least twice the latency is used)")
	fs.IntVar(&cfg.Rounds, "rounds", cfg.Rounds, "rounds; the paths alternate within each round")
	mix := fs.String("mix", "search=1", "job mix, e.g. search=0.8,insert=0.2 (inserts upsert Tasks on 4096 rotating external ids)")
	fs.BoolVar(&cfg.SimH2C, "sim-h2c", cfg.SimH2C, "the simulator also speaks cleartext HTTP/2 and says so, and the workers take it (one connection for every call; the baseline stays on HTTP/1.1): less memory per call in flight, more CPU per call")
	fs.BoolVar(&cfg.IdenticalSearches, "identical-searches", cfg.IdenticalSearches, "send the same search every time, so the workers' shared searches answer many jobs with one Salesforce call (by default each search has its own LIMIT and costs one call, as the baseline's)")
	fs.StringVar(&cfg.JSONFile, "json", cfg.JSONFile, "also write the results as JSON to this file")
	fs.StringVar(&cfg.Format, "format", cfg.Format, "output on stdout: table or json")
	fs.StringVar(&cfg.Binary, "binary", cfg.Binary, "sfblocks binary started for the workers and the baseline (default: this executable)")
	fs.StringVar(&cfg.WorkerLogLevel, "worker-log-level", cfg.WorkerLogLevel, "--log-level of the workers (their logs go to files in the bench's temporary directory)")
	fs.DurationVar(&cfg.JobTimeout, "job-timeout", cfg.JobTimeout, "how long a client waits for one reply")
	fs.StringVar(&cfg.NATSURL, "nats-url", cfg.NATSURL, "run against this NATS (comma-separated URLs, e.g. a cluster's nodes) instead of the embedded server; the bench creates the fleet's streams there: not a production fleet's NATS")
	fs.IntVar(&cfg.Replicas, "replicas", cfg.Replicas, "the workers' --replicas on --nats-url (3 on a three-node cluster)")
	fs.BoolVar(&cfg.CompareEmbedded, "compare-embedded", cfg.CompareEmbedded, "with --nats-url: also run every path against the embedded one-node server, alternating, and report --nats-url/embedded per path")
	if err := parseFlags(fs, args); err != nil {
		return cfg, err
	}
	var err error
	if cfg.Mix, err = bench.ParseMix(*mix); err != nil {
		return cfg, err
	}
	if cfg.Paths, err = bench.ParsePaths(*paths); err != nil {
		return cfg, err
	}
	cfg.Progress = stderr
	return cfg, nil
}
