package worker

import (
	"errors"
	"net/http"

	"github.com/sfblocks/sfblocks/blocks"
)

// Errors returned by the worker's lifecycle methods and option validation.
var (
	// ErrInvalidOption is wrapped by every option validation error; the
	// message names the option and the accepted range.
	ErrInvalidOption = errors.New("worker: invalid option")
	// ErrAlreadyStarted is returned by [Worker.Start] on a worker that was
	// started before (a Worker is single use: build a new one to restart).
	ErrAlreadyStarted = errors.New("worker: already started (a Worker runs once; create a new one)")
	// ErrNotStarted is returned by [Worker.Ready] before [Worker.Start].
	ErrNotStarted = errors.New("worker: not started")
	// ErrDraining is returned by [Worker.Ready] once shutdown began.
	ErrDraining = errors.New("worker: draining, not taking new jobs")
	// ErrNotConnected is returned by [Worker.Ready] while the NATS
	// connection is down (the client reconnects on its own).
	ErrNotConnected = errors.New("worker: NATS connection is not connected")
	// ErrServiceStopped is returned by [Worker.Ready] when the micro service
	// stopped on its own, e.g. because the NATS connection was closed.
	ErrServiceStopped = errors.New("worker: NATS micro service stopped")
)

// HTTPStatus maps a job error code to the HTTP-like status the worker puts in
// the Nats-Service-Error-Code header of a failed reply:
//
//	INVALID_REQUEST 400, UNKNOWN_ACCOUNT 404, RATE_LIMITED 429,
//	INTERNAL 500, AUTH_FAILED 502, SALESFORCE_ERROR 502 (Salesforce's own
//	status is in the reply's result_code), SALESFORCE_UNAVAILABLE 503,
//	TIMEOUT 504; any other code 500.
func HTTPStatus(code blocks.Code) int {
	switch code {
	case blocks.CodeInvalidRequest:
		return http.StatusBadRequest
	case blocks.CodeUnknownAccount:
		return http.StatusNotFound
	case blocks.CodeRateLimited:
		return http.StatusTooManyRequests
	case blocks.CodeAuthFailed, blocks.CodeSalesforceError:
		return http.StatusBadGateway
	case blocks.CodeSalesforceUnavailable:
		return http.StatusServiceUnavailable
	case blocks.CodeTimeout:
		return http.StatusGatewayTimeout
	default:
		return http.StatusInternalServerError
	}
}
