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
// The package also provides [Connect] (a NATS connection with sensible
// reconnect settings and logging), [Metrics] (Prometheus collectors) and
// [NewHTTPHandler] (/metrics, /healthz, /readyz). Package
// github.com/sfblocks/sfblocks/worker/client is the Go client callers use.
package worker
