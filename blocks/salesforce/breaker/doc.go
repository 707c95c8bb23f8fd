// Package breaker keeps one circuit breaker per Salesforce integration
// account, so that while an org is down (or its API limit is exhausted)
// jobs for that account fail in microseconds instead of each waiting for a
// timeout, and Salesforce is not hammered while it recovers.
//
// In the flow of a job it sits under the REST client and the token cache,
// at the HTTP transport: every request for the account, data calls and
// token requests alike, passes the account's [Breaker]:
//
//	set, err := breaker.NewSet(breaker.Settings{Logger: log, Registerer: reg})
//	b := set.For("prod")
//	c, err := salesforce.New(ts, salesforce.WithHTTPClient(b.Client(salesforce.SharedHTTPClient())))
//	// and auth.CacheOptions{HTTPClientFor: func(a string) *http.Client { return set.For(a).Client(tokenClient) }}
//
// # What counts
//
// A failure is anything that says Salesforce is unwell: a 5xx answer, 429,
// 408, 403 REQUEST_LIMIT_EXCEEDED, a refused or reset connection, a
// timeout (the request's context deadline passing included). A request
// whose context the caller cancelled is not counted at all. Every other
// answer, including a job's own faults (MALFORMED_QUERY, INVALID_FIELD,
// REQUIRED_FIELD_MISSING, UNABLE_TO_LOCK_ROW, other 4xx, a token endpoint
// 400 invalid_grant), is a success: Salesforce answered, so it is up.
//
// The outcome is decided when the response headers arrive; a failure while
// reading a body that started well is not counted.
//
// # States
//
// Closed: calls pass. The breaker opens after [Settings.ConsecutiveFailures]
// failures in a row (default 5), or when at least [Settings.MinRequests]
// counted calls (default 20) within the rolling [Settings.Window] (default
// 10 s) failed at [Settings.FailureRatio] or more (default 50%).
//
// Open: for [Settings.OpenTimeout] (default 30 s) every call fails at once,
// without touching the network, with an [*OpenError] (errors.Is(err,
// [ErrOpen])) naming the account and when the breaker will probe again.
// [Breaker.OpenUntil] gives that time to callers that want to pause, such
// as a durable consumer delaying its redeliveries.
//
// Half-open: up to [Settings.HalfOpenProbes] calls (default 3) go through
// as probes; when that many succeed in a row the breaker closes, and one
// failure opens it again. Calls beyond the probes fail like open ones.
//
// Every state change is logged once (account, from, to) and exported as
// sfblocks_breaker_state{account} (0 closed, 1 half-open, 2 open) and
// sfblocks_breaker_transitions_total{account,to}; calls refused while open
// count in sfblocks_breaker_rejected_total{account}.
package breaker
