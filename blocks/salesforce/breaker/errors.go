package breaker

import (
	"errors"
	"fmt"
	"time"
)

// ErrOpen matches, with errors.Is, every [*OpenError]: a call refused by an
// account's breaker without being sent.
var ErrOpen = errors.New("breaker: circuit breaker open")

// OpenError is returned, instead of sending the request, while an account's
// breaker is open (or half-open with all its probes in flight). Nothing
// reached Salesforce, so the call is always safe to retry; retrying before
// RetryAt only gets the same error. The REST client wraps it as a transport
// error, and package blocks maps it to SALESFORCE_UNAVAILABLE, retryable.
type OpenError struct {
	// Account is the integration account whose breaker refused the call.
	Account string
	// State is StateOpen, or StateHalfOpen when the probe calls are taken.
	State State
	// RetryAt is roughly when a call may go through again: when the open
	// breaker turns half-open, or (half-open) when the probes should have
	// answered.
	RetryAt time.Time
}

// Error implements error. It names the account and the retry time.
func (e *OpenError) Error() string {
	at := e.RetryAt.UTC().Format(time.RFC3339)
	if e.State == StateHalfOpen {
		return fmt.Sprintf("breaker: the circuit breaker for account %q is half-open and its probe calls to Salesforce are in flight; retry after %s", e.Account, at)
	}
	return fmt.Sprintf("breaker: the circuit breaker for account %q is open after repeated Salesforce failures; calls fail fast until about %s, retry after that", e.Account, at)
}

// Is makes errors.Is(err, ErrOpen) true.
func (e *OpenError) Is(target error) bool { return target == ErrOpen }

// BreakerOpen reports true. Package auth looks for this method so that its
// token retry loop gives up at once instead of backing off against an open
// breaker, without importing this package.
func (e *OpenError) BreakerOpen() bool { return true }

// RetryAfter returns how long from now until RetryAt, at least zero.
func (e *OpenError) RetryAfter() time.Duration {
	return max(time.Until(e.RetryAt), 0)
}

// errExcluded marks an outcome the breaker must not count: the caller
// cancelled the request.
var errExcluded = errors.New("breaker: excluded")

// failure is a counted failure; reason is for the log line only.
type failure struct{ reason string }

func (f *failure) Error() string { return "breaker: failure: " + f.reason }
