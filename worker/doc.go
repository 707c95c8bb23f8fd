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
// Start creates or updates the stream, the consumers, the results and
// attempts buckets and the dead-letter stream (idempotent, safe when
// workers start together). A job carries its id in its payload and in
// Nats-Msg-Id (duplicates within the window are dropped; the payload's id
// wins when both are set, so a replay can use a Nats-Msg-Id of its own) and
// its reply subject in the Reply-To header. A fetch loop per block pulls only as many
// jobs as there are free in-flight slots (shared with the micro path), so
// nothing waits in a client buffer; running jobs signal progress every
// AckWait/3. Each job's result is kept in the KV bucket sfblocks_results
// under [sfblocks.ResultKey](id) before the reply is published and the message
// acked, so a redelivered job (its worker died before the ack) is answered
// with the kept result and never calls Salesforce again. What becomes of a
// message (ack, nak, term) is decided in one function, settle. Stop stops
// pulling, finishes and acks the jobs in flight, and naks anything received
// after that; jobs cut short by the drain timeout are naked to another
// worker (except plain creates, see below).
//
// Retries and dead letters: settle decides from the reply. A success is
// kept, answered and acked. A permanent failure (error.retryable false) is
// dead-lettered at once. A retryable failure (UNABLE_TO_LOCK_ROW, 5xx,
// timeouts, rate limits) is handed back with NakWithDelay, exponential
// backoff with jitter ([DurableConfig] RetryBackoff, MaxRetryBackoff), up to
// MaxAttempts runs (default 5); the caller gets only the final outcome.
// JetStream redelivers the same message, so the attempts made, the first
// and last failure and the last error live in the KV bucket
// sfblocks_attempts under [sfblocks.ResultKey](id), read only on a redelivery; a
// delivery refused by an open circuit breaker (nothing sent) uses no
// attempt and waits until the breaker lets calls through. The consumers'
// MaxDeliver is -1 by default so that the attempt count governs.
//
// A job that fails for good is published, before its message is
// terminated, to the dead-letter stream SFBLOCKS_DLQ on
// "<prefix>.dlq.<block>.<job key>" (one message per subject: a job has at
// most one dead letter, its newest; kept DLQMaxAge, 30 days by default) as
// a [sfblocks.DeadLetter] JSON envelope: payload and headers, block, account, error,
// Salesforce's result code and body, attempts, first and last failure. If
// that publish fails (e.g. a capped DLQ is full) the job is naked, never
// acked without its dead letter. Failed synchronous Inserts are
// dead-lettered too, after the caller got the reply; synchronous Searches
// only with DLQSyncSearches; synchronous INVALID_REQUEST never (the caller
// got the error). `sfblocks dlq` and the client's ReplayDeadLetters publish
// a dead letter's job again with its original id in the payload and the
// header Sfblocks-Replay-Of: the worker keys results by the payload's id, a
// kept success answers the replay (nothing is created twice), a kept
// failure does not (the replay really runs).
//
// What can still happen: an Insert without external_id whose outcome is
// unknown — the job's deadline passed (TIMEOUT) or the connection dropped
// after Salesforce may have committed the record — could create a second
// record if it ran again. sfblocks keeps that rare: finished jobs answer
// redeliveries from their kept result; such a create is retried only when
// the failure proves nothing was saved (Salesforce answered with its own
// error, such as UNABLE_TO_LOCK_ROW or 503; or nothing was sent: open
// breaker, token failure, refused connection); otherwise it is
// dead-lettered with reason ambiguous_create instead of retried, and an
// operator checks Salesforce before replaying it. A create cut short by the
// drain timeout is dead-lettered the same way. Upserts (external_id) are
// safe to repeat and are always retried: use them for call logs.
//
// The package also provides [Connect] (a NATS connection with sensible
// reconnect settings and logging), [Metrics] (Prometheus collectors) and
// [NewHTTPHandler] (/metrics, /healthz, /readyz). Package
// github.com/sfblocks/sfblocks/worker/client is the Go client callers use.
package worker
