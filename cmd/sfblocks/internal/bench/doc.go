// Package bench measures sfblocks under load: jobs per second, latency
// percentiles, Salesforce calls and token requests per job, CPU time per
// job and peak memory of the workers. It is the body of `sfblocks bench`;
// the command only turns its flags into a [Config].
//
// # What runs
//
// [Run] starts, for the bench alone, an embedded NATS server with
// JetStream and the Salesforce simulator (with [Config.Latency] added to
// every REST call), both on loopback ports they pick themselves. Each run
// then starts its responders as separate processes of the sfblocks binary
// ([Config.Binary]), so that their CPU time and peak RSS are theirs and
// not the load generator's:
//
//   - [PathSync] and [PathDurable] start [Config.Workers] `sfblocks serve`
//     processes against that NATS and simulator (the durable ones with
//     --durable=true) and wait for their /readyz;
//   - [PathBaseline] starts one `sfblocks bench-baseline` process, which
//     runs [ServeBaseline] and says "ready" on stdout.
//
// The workers share one encrypted token cache, as a fleet does, and log at
// [Config.WorkerLogLevel] to files in the bench's temporary directory; the
// end of a log is in the error when a process fails.
//
// # The baseline
//
// A figure such as 8000 jobs/s means little on its own: it depends on the
// machine and on what else runs on it. So the same load also goes through
// a baseline, the least a NATS responder must do to serve the same jobs:
// the same subjects and queue group, the same HTTP call to the same
// simulator with a token fetched once, and none of the worker's
// validation, escaping, token cache, breaker, retries, logging or metrics.
// sync/baseline is then the share of the bare cost the worker keeps.
//
// # A run
//
// A run drives one load shape (a scenario) through one path. The load is
// closed-loop: [Config.Clients] goroutines each send a job (a Search of
// one seed Contact, or with [Config.Mix] an upsert of a Task on 4096
// rotating external ids), wait for its reply and send the next. After
// [Config.Warmup] (at least twice the latency, so the clients have ramped
// up) the window of [Config.Duration] opens; the simulator's counters and
// the processes' CPU time are read as it opens and closes, and the
// workers' in-flight gauge is sampled in between. Only jobs that complete
// in the window count. At the end the jobs still in flight are awaited,
// so no run leaves work to the next, and the processes are stopped.
//
// # Rounds and ratios
//
// Shared machines are noisy, so every run is repeated [Config.Rounds]
// times, and within a round the paths take turns going first. A ratio
// (sync/baseline, durable/sync, durable/baseline) is computed per round,
// from two runs that shared the machine's mood of the moment, and the
// median of the rounds is reported: it is steadier than either figure.
//
// # The floors preset
//
// [PresetFloors] runs five fixed scenarios instead of the one the flags
// describe and reports each measurement against its floor, PASS or BELOW
// (reported, not asserted):
//
//	search-64  sync Search, 0 latency, 64 clients: sync/baseline >= 0.85, durable/sync >= 0.6
//	inflight   100ms latency, 256 clients, one worker: >= 2300 jobs/s
//	scale      100ms latency, 384 clients, 64 in flight per worker: 4 workers / 1 worker >= 3.6
//	rss        1000 jobs in flight in one worker: peak RSS <= 64 MB
//
// # Using it
//
//	cfg := bench.DefaultConfig()
//	cfg.Paths = []bench.Path{bench.PathSync, bench.PathBaseline}
//	cfg.Duration, cfg.Rounds = 2*time.Second, 1
//	cfg.Binary = "/tmp/sfblocks" // a build of cmd/sfblocks
//	err := bench.Run(ctx, cfg, os.Stdout)
//
// prints one row per run (jobs/s, p50/p90/p99 ms, errors by code, SF
// calls/job, token requests, CPU µs/job, most jobs in flight, peak RSS MB)
// and then the ratios; [FormatJSON] prints the same as JSON. CPU time and
// peak RSS are read from Linux's /proc and are n/a elsewhere.
package bench
