// Package worker serves the sfblocks scenario blocks on NATS: it is the
// first hop of a job's path (NATS message → worker → blocks → Salesforce).
//
// A [Worker] registers a NATS micro service (name "sfblocks" by default)
// with one endpoint per block, "<prefix>.search" and "<prefix>.insert"
// (prefix "sfblocks" by default), both in one queue group, so any number of
// workers sharing nothing but the NATS URL split the jobs between them and
// the standard NATS CLI sees them:
//
//	nats micro ls
//	nats micro stats sfblocks
//	nats req sfblocks.search '{"query":"SELECT Id FROM Contact LIMIT 1"}'
//
// Each message is one job. The worker hands its payload to a [Handler]
// (normally a *blocks.Executor, which decodes, validates, applies the job's
// deadline and calls Salesforce) on a pool of long-lived goroutines, so a
// worker runs up to [WithMaxInFlight] jobs at once, and publishes the JSON
// [sfblocks.Reply] on the message's reply subject. Failed jobs also carry the
// micro error headers (Nats-Service-Error-Code with an HTTP-like status
// from [HTTPStatus], Nats-Service-Error with "CODE: message").
//
// Backpressure and overload: the endpoint handler never waits for a slot.
// When all in-flight slots are busy, a synchronous job waits in the
// worker's backlog (bounded by [WithMaxBacklog], 4 × max in flight by
// default) and starts, in arrival order, when a slot frees up. When the
// backlog is full too, the job is answered at once, without running, with
// a retryable SALESFORCE_UNAVAILABLE failure whose message says the worker
// is saturated (retry, or add workers); it is logged like any outcome and
// counted in sfblocks_worker_overloaded_total. So a caller always gets an
// answer, never a silent drop in a client buffer. The NATS client's pending
// buffer ([WithPendingLimits]) only fills if jobs arrive faster than the
// handler routes them; past it the client drops messages and reports a slow
// consumer, which is logged and counted. The worker never buffers without
// bound.
//
// Shutdown: [Worker.Stop] (or cancelling the context given to [Worker.Run])
// stops taking jobs so that queue-group peers receive the new ones, finishes
// and answers every job already received, and only after the drain timeout
// answers what is left with a retryable failure. No received job is dropped
// or answered twice.
//
// Durable jobs: with [WithDurable] the worker also pulls jobs from a
// JetStream work-queue stream (SFBLOCKS_JOBS, file storage) capturing
// "<prefix>.jobs.search" and "<prefix>.jobs.insert", through one durable
// pull consumer per block ("search", "insert") shared by the whole fleet.
// Start creates the stream, the consumers, the results, attempts and
// claims buckets and the dead-letter stream where they are missing, and
// never changes them where they exist: the fleet's settings have one owner
// (see fleet.go, [ApplyFleet] and [CheckFleet]); a worker whose flags
// disagree logs the differences and runs with the fleet's settings, its
// progress signals at the consumer's own AckWait/3. A job is known by its
// [sfblocks.JobIdentity] (block, account, id: the payload's id, else the
// Sfblocks-Job-Id header, else its stream sequence), published with
// Nats-Msg-Id [sfblocks.MsgID] and its reply subject in the Reply-To
// header. A fetch loop per block pulls only as many jobs as there are free
// in-flight slots (shared with the micro path), so nothing waits in a
// client buffer. What becomes of a message (ack, nak, term) is decided in
// one function, settle. Stop stops pulling, finishes and acks the jobs in
// flight, and naks anything received after that.
//
// Exactly once (exactly.go, ledger.go): a finished durable job's reply is
// kept in the results bucket under its identity before the reply is
// published and the message acked, so a job delivered again is answered
// with the kept result and never calls Salesforce again (a synchronous
// Insert is answered first and kept right after, its lease still held); a
// job reusing another's id with other content is refused INVALID_REQUEST. An Insert first takes the job's
// lease in the claims bucket (a per-key TTL the server enforces), so no two
// workers ever run it at once, and never calls Salesforce past its lease;
// a plain create also writes a run record to the attempts bucket, which
// outlives the lease. An attempt that may have created its record although
// it failed is reconciled against Salesforce before the job runs again
// ([blocks.Executor.Reconcile]): one match is adopted, several are
// dead-lettered as ambiguous_create with the candidates, none waits until
// the attempt can no longer land ([WithLandingWindow]) and then creates.
// An account's idempotency field turns plain creates into upserts keyed on
// the identity, which never need reconciling. Synchronous Inserts that
// carry their own id go through the same steps, so a retried request gets
// its first run's answer. Bookkeeping runs under its own bounded contexts:
// a drain deadline never cuts it.
//
// Retries and dead letters: settle decides from the reply. A success is
// kept, answered and acked. A permanent failure (error.retryable false) is
// dead-lettered at once. A retryable failure (UNABLE_TO_LOCK_ROW, 5xx,
// timeouts, rate limits) is handed back with NakWithDelay, exponential
// backoff with jitter ([DurableConfig] RetryBackoff, MaxRetryBackoff), up to
// MaxAttempts runs (default 5); the caller gets only the final outcome.
// JetStream redelivers the same message, so the attempts made, the first
// and last failure and the last error live in the attempts bucket; a
// delivery refused by an open circuit breaker (nothing sent) uses no
// attempt and waits until the breaker lets calls through. The consumers'
// MaxDeliver is -1 by default so that the attempt count governs.
//
// A job that fails for good is published, before its message is
// terminated, to the dead-letter stream SFBLOCKS_DLQ on
// [sfblocks.DLQSubject] (one message per subject: a job has at most one
// dead letter, its newest; kept DLQMaxAge, 30 days by default) as a
// [sfblocks.DeadLetter] JSON envelope: payload and headers, block,
// account, error, Salesforce's result code and body, attempts, first and
// last failure, candidates. A payload too large for the envelope is kept
// in an object store and named by reference. If that publish fails (e.g. a
// capped DLQ is full) the job is naked, never acked without its dead
// letter. Failed synchronous Inserts are dead-lettered too, after the
// caller got the reply; synchronous Searches only with DLQSyncSearches;
// synchronous INVALID_REQUEST never (the caller got the error). `sfblocks
// dlq` and the client's ReplayDeadLetters publish a dead letter's job again
// with its original id in the payload and the header Sfblocks-Replay-Of: a
// kept success answers the replay (nothing is created twice), a kept
// failure does not (the replay really runs, after reconciling).
//
// On a JetStream cluster (DurableConfig.Replicas 3): every JetStream
// operation the worker makes (pulls, acks, the ledger's reads and writes,
// claims, dead letters, parks, status) is retried across a leader change
// for up to DurableConfig.FailoverWindow, in ways that cannot write twice
// (failover.go); past it the error wraps [ErrNoJetStreamLeader] and names
// the stream. The ledger reads a replicated bucket through its leader
// (ledger_read.go), so a follower catching up never hides a run record.
// [Worker.Ready] reports [ErrJetStreamUnavailable] while the jobs stream
// has no leader. [CheckReplicas] and the server's own refusals, explained,
// check the replica count against the cluster.
//
// Tracing: each job run is a span that continues the W3C traceparent and
// tracestate headers its message carries, and its Salesforce calls and
// token waits are that span's children; a dead letter keeps the failed
// run's span context, and a replay's span links to it (see tracing.go,
// [WithTracerProvider] and the README's "Trace context").
//
// The package also provides [Connect] (a NATS connection with sensible
// reconnect settings and logging), [Metrics] (Prometheus collectors) and
// [NewHTTPHandler] (/metrics, /healthz, /readyz). Package
// github.com/sfblocks/sfblocks/worker/client is the Go client callers use.
package worker
