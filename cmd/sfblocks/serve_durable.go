package main

import (
	"flag"
	"strconv"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/auth"
	"github.com/sfblocks/sfblocks/worker"
)

// durableFlags are the settings of serve's durable path (JetStream work
// queue beside the synchronous micro service).
type durableFlags struct {
	enabled bool
	cfg     worker.DurableConfig
}

// addFlags registers the durable flags on fs. Zero values take the worker's
// defaults (see worker.DurableConfig).
func (d *durableFlags) addFlags(fs *flag.FlagSet) {
	fs.BoolVar(&d.enabled, "durable", envBool("SFBLOCKS_DURABLE", true), "also pull durable jobs from the JetStream work queue on PREFIX.jobs.search and PREFIX.jobs.insert; needs JetStream (env SFBLOCKS_DURABLE)")
	fs.StringVar(&d.cfg.Stream, "jobs-stream", envOr("SFBLOCKS_JOBS_STREAM", sfblocks.DefaultJobsStream), "JetStream work-queue stream of the durable jobs (env SFBLOCKS_JOBS_STREAM)")
	fs.DurationVar(&d.cfg.ResultsTTL, "results-ttl", envDuration("SFBLOCKS_RESULTS_TTL", worker.DefaultResultsTTL), "how long finished durable jobs' results are kept, so a redelivered job never runs twice (env SFBLOCKS_RESULTS_TTL)")
	fs.DurationVar(&d.cfg.DuplicateWindow, "duplicate-window", envDuration("SFBLOCKS_DUPLICATE_WINDOW", worker.DefaultDuplicateWindow), "window in which a durable job published again with the same id is dropped (env SFBLOCKS_DUPLICATE_WINDOW)")
	fs.DurationVar(&d.cfg.AckWait, "ack-wait", envDuration("SFBLOCKS_ACK_WAIT", worker.DefaultAckWait), "how long before the jobs of a dead worker are delivered to another one; running jobs signal progress every third of it (env SFBLOCKS_ACK_WAIT)")
	fs.IntVar(&d.cfg.MaxDeliver, "max-deliver", envInt("SFBLOCKS_MAX_DELIVER", worker.DefaultMaxDeliver), "most deliveries of one durable job; -1 (unlimited) lets --max-attempts govern, since deliveries refused by an open breaker use no attempt (env SFBLOCKS_MAX_DELIVER)")
	fs.IntVar(&d.cfg.MaxAttempts, "max-attempts", envInt("SFBLOCKS_MAX_ATTEMPTS", worker.DefaultMaxAttempts), "most runs of a durable job failing with a retryable error before it is dead-lettered; 1 turns retries off (env SFBLOCKS_MAX_ATTEMPTS)")
	fs.DurationVar(&d.cfg.RetryBackoff, "retry-backoff", envDuration("SFBLOCKS_RETRY_BACKOFF", worker.DefaultRetryBackoff), "wait before a failed durable job's second attempt; doubles each attempt, with jitter (env SFBLOCKS_RETRY_BACKOFF)")
	fs.DurationVar(&d.cfg.MaxRetryBackoff, "max-retry-backoff", envDuration("SFBLOCKS_MAX_RETRY_BACKOFF", worker.DefaultMaxRetryBackoff), "longest wait between two attempts (env SFBLOCKS_MAX_RETRY_BACKOFF)")
	fs.StringVar(&d.cfg.DLQStream, "dlq-stream", envOr("SFBLOCKS_DLQ_STREAM", sfblocks.DefaultDLQStream), "dead-letter stream, capturing PREFIX.dlq.> (env SFBLOCKS_DLQ_STREAM)")
	fs.DurationVar(&d.cfg.DLQMaxAge, "dlq-max-age", envDuration("SFBLOCKS_DLQ_MAX_AGE", worker.DefaultDLQMaxAge), "how long dead letters are kept (env SFBLOCKS_DLQ_MAX_AGE)")
	fs.Int64Var(&d.cfg.DLQMaxMsgs, "dlq-max-msgs", int64(envInt("SFBLOCKS_DLQ_MAX_MSGS", 0)), "cap on dead letters; 0 for none. When full, new dead letters are refused and their jobs handed back, never dropped (env SFBLOCKS_DLQ_MAX_MSGS)")
	fs.Int64Var(&d.cfg.DLQMaxBytes, "dlq-max-bytes", int64(envInt("SFBLOCKS_DLQ_MAX_BYTES", 0)), "cap on the dead-letter stream's size in bytes; 0 for none; as --dlq-max-msgs when full (env SFBLOCKS_DLQ_MAX_BYTES)")
	fs.BoolVar(&d.cfg.DLQSyncSearches, "dlq-sync-searches", envBool("SFBLOCKS_DLQ_SYNC_SEARCHES", false), "also dead-letter failed synchronous searches (failed synchronous inserts always are) (env SFBLOCKS_DLQ_SYNC_SEARCHES)")
	fs.IntVar(&d.cfg.MaxAckPending, "max-ack-pending", envInt("SFBLOCKS_MAX_ACK_PENDING", 0), "most durable jobs of one block in flight across the fleet; 0 means 8 workers × --max-in-flight (env SFBLOCKS_MAX_ACK_PENDING)")
	// On a cluster (README, Running on a cluster).
	fs.IntVar(&d.cfg.Replicas, "replicas", envInt("SFBLOCKS_REPLICAS", 1), "replicas of every stream and bucket the fleet creates (jobs, parked, dead letters, results, attempts, claims, tokens, status, budget): 1 on a single server, 3 on a three-node JetStream cluster; at most the cluster's size. Existing ones keep theirs until 'sfblocks fleet apply --replicas N' (env SFBLOCKS_REPLICAS)")
	fs.DurationVar(&d.cfg.FailoverWindow, "failover-window", envDuration("SFBLOCKS_FAILOVER_WINDOW", worker.DefaultFailoverWindow), "how long one JetStream operation is retried across a cluster's leader change before it fails naming the cluster state (env SFBLOCKS_FAILOVER_WINDOW)")
	d.cfg.SharedBuckets = []string{auth.DefaultBucket, sfblocks.DefaultStatusBucket, worker.DefaultBudgetBucket}
}

// options returns the worker option turning the durable path on, or none.
func (d *durableFlags) options() []worker.Option {
	if !d.enabled {
		return nil
	}
	return []worker.Option{worker.WithDurable(d.cfg)}
}

// envBool reads a boolean environment variable (1/0, true/false...), or def
// when it is unset or not a boolean.
func envBool(key string, def bool) bool {
	if v, err := strconv.ParseBool(envOr(key, "")); err == nil {
		return v
	}
	return def
}
