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
// deadline and calls Salesforce) on its own goroutine, so a worker runs up to
// [WithMaxInFlight] jobs at once, and publishes the JSON [blocks.Reply] on
// the message's reply subject. Failed jobs also carry the micro error
// headers (Nats-Service-Error-Code with an HTTP-like status from
// [HTTPStatus], Nats-Service-Error with "CODE: message").
//
// Backpressure: when the in-flight limit is reached the endpoint's delivery
// goroutine blocks, and further messages wait in the NATS client's pending
// buffer (bounded by [WithPendingLimits]); past those limits the client drops
// messages and reports a slow consumer, which is logged and counted. The
// worker never buffers without bound and never rejects a job merely because
// it is busy.
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
// Start creates or updates the stream, the consumers and the results bucket
// (idempotent, safe when workers start together). A job carries its id in
// Nats-Msg-Id (duplicates within the window are dropped) and its reply
// subject in the Reply-To header. A fetch loop per block pulls only as many
// jobs as there are free in-flight slots (shared with the micro path), so
// nothing waits in a client buffer; running jobs signal progress every
// AckWait/3. Each job's result is kept in the KV bucket sfblocks_results
// under [ResultKey](id) before the reply is published and the message
// acked, so a redelivered job (its worker died before the ack) is answered
// with the kept result and never calls Salesforce again. What becomes of a
// message (ack, nak, term) is decided in one function, settle. Stop stops
// pulling, finishes and acks the jobs in flight, and naks anything received
// after that; jobs cut short by the drain timeout are naked to another
// worker.
//
// The package also provides [Connect] (a NATS connection with sensible
// reconnect settings and logging), [Metrics] (Prometheus collectors) and
// [NewHTTPHandler] (/metrics, /healthz, /readyz). Package
// github.com/sfblocks/sfblocks/worker/client is the Go client callers use.
package worker
