// Package salesforce is sfblocks' client for the Salesforce REST API: the
// last step of a job's path, where a Search becomes a query and an Insert
// becomes a create or an upsert.
//
// A [Client] is safe for concurrent use and is meant to be shared by every
// job of one integration account. It takes its bearer token from a
// [TokenSource] (package auth provides the fleet-wide cached one), learns the
// instance URL from the token when none is configured, and when Salesforce
// answers 401 INVALID_SESSION_ID it invalidates exactly that token (if the
// source implements [TokenInvalidator]) and retries the request once with a
// fresh one.
//
// Every failure from Salesforce is an [*APIError] carrying the HTTP status and
// Salesforce's errorCode, message and fields. [Classify] sorts any error the
// client returns into a [Kind] (session expired, rate limited, transient,
// permanent) so that callers decide on retries in one place:
//
//	res, err := c.Query(ctx, "SELECT Id, Name FROM Contact WHERE Phone = '"+
//		salesforce.EscapeSOQLString(phone)+"'", salesforce.MaxRecords(10))
//	switch salesforce.Classify(err) {
//	case salesforce.KindNone: // use res.Records
//	case salesforce.KindTransient, salesforce.KindRateLimited: // retry later
//	default: // report; retrying will not help
//	}
//
// Values never reach a statement unescaped: [EscapeSOQLString],
// [EscapeSOQLLike] and [EscapeSOSL] follow Salesforce's documented escaping
// rules and are fuzz-tested against the simulator's parser.
//
// API usage from the Sforce-Limit-Info header of every response is handed to
// the observer set with [WithUsageObserver] and kept in [Client.Usage].
package salesforce
