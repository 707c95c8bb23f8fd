// Package sfblocks is the wire contract of the sfblocks scenario blocks:
// what a scenario runtime sends on NATS and what it gets back. It holds
// types and names only, and imports nothing but the standard library, so a
// runtime that imports it (or the Go client in worker/client, which builds
// on it) pulls in no worker dependency. It plays the part rivertype plays
// for River.
//
// A job is one JSON object, a [SearchRequest] or an [InsertRequest],
// published on [Subject] (request/reply, "sfblocks.search") or on
// [JobsSubject] (a durable job on the JetStream work queue,
// "sfblocks.jobs.insert", with its reply subject in the [HeaderReplyTo]
// header). Every job gets one [Reply]: its [Status] is the block's exit (ok,
// no_data, failed); a failed reply carries an [ErrorInfo] with a stable
// [Code]. In Go, an *[Error] stands for a failure and matches its code's
// sentinel:
//
//	if errors.Is(err, sfblocks.ErrSalesforceUnavailable) { /* take the fallback exit */ }
//
// A job is known by its [JobIdentity] (block, account, id): a finished
// job's reply is kept in the results bucket as a [KeptResult] under
// [JobIdentity.Key], and a job that fails for good is kept as a
// [DeadLetter] on [DLQSubject].
//
// What the fields mean and how they are validated is the business of
// package blocks (go doc ./blocks); how jobs move is package worker's.
package sfblocks
