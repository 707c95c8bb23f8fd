package sfblocks

import "strings"

// Code is the stable error code of a failed job, carried in the reply's
// error.code. Callers branch on it, never on message text.
type Code string

const (
	// CodeInvalidRequest: the job itself is wrong (bad JSON, unknown key,
	// invalid name, missing variable, value not allowed where it stands).
	// Final: sending it again gives the same answer.
	CodeInvalidRequest Code = "INVALID_REQUEST"
	// CodeUnknownAccount: the job names an integration account that is not
	// configured. Final.
	CodeUnknownAccount Code = "UNKNOWN_ACCOUNT"
	// CodeAuthFailed: the account's authorization is broken (refresh token
	// revoked, session rejected after a refresh). Final until an operator
	// re-authorizes the account.
	CodeAuthFailed Code = "AUTH_FAILED"
	// CodeSalesforceError: Salesforce refused the request; the reply carries
	// salesforce_code (MALFORMED_QUERY, REQUIRED_FIELD_MISSING, ...), the
	// HTTP status in result_code and the raw body in result_body. Final,
	// except UNABLE_TO_LOCK_ROW, which is retryable.
	CodeSalesforceError Code = "SALESFORCE_ERROR"
	// CodeRateLimited: the org's API request limit is exhausted (403
	// REQUEST_LIMIT_EXCEEDED or 429). Retryable later.
	CodeRateLimited Code = "RATE_LIMITED"
	// CodeSalesforceUnavailable: Salesforce, the network or the token
	// endpoint was unwell (5xx, connection refused, token endpoint down).
	// Retryable. Also the code of a call the account's circuit breaker
	// refused without sending: the message names the account and roughly
	// when it lets calls through again.
	CodeSalesforceUnavailable Code = "SALESFORCE_UNAVAILABLE"
	// CodeTimeout: the job's deadline (timeout_ms, or the worker's default)
	// passed before Salesforce answered. Retryable; an Insert that timed
	// out may nevertheless have created its record, which is why
	// external_id (upsert) is the safe way to retry inserts.
	CodeTimeout Code = "TIMEOUT"
	// CodeInternal: a bug or an answer sfblocks did not expect. Not
	// retryable.
	CodeInternal Code = "INTERNAL"
)

// HTTPStatus is the HTTP-like status a worker puts in the
// Nats-Service-Error-Code header of a failed reply:
//
//	INVALID_REQUEST 400, UNKNOWN_ACCOUNT 404, RATE_LIMITED 429,
//	INTERNAL 500, AUTH_FAILED 502, SALESFORCE_ERROR 502 (Salesforce's own
//	status is in the reply's result_code), SALESFORCE_UNAVAILABLE 503,
//	TIMEOUT 504; any other code 500.
func (c Code) HTTPStatus() int {
	switch c {
	case CodeInvalidRequest:
		return 400
	case CodeUnknownAccount:
		return 404
	case CodeRateLimited:
		return 429
	case CodeAuthFailed, CodeSalesforceError:
		return 502
	case CodeSalesforceUnavailable:
		return 503
	case CodeTimeout:
		return 504
	default:
		return 500
	}
}

// Sentinels, one per [Code], for [errors.Is]: an *[Error] matches the
// sentinel of its code, so
//
//	if errors.Is(err, sfblocks.ErrTimeout) { ... }
//
// works on any error chain holding an *Error, whatever its message.
var (
	ErrInvalidRequest        = &Error{Code: CodeInvalidRequest}
	ErrUnknownAccount        = &Error{Code: CodeUnknownAccount}
	ErrAuthFailed            = &Error{Code: CodeAuthFailed}
	ErrSalesforceError       = &Error{Code: CodeSalesforceError}
	ErrRateLimited           = &Error{Code: CodeRateLimited}
	ErrSalesforceUnavailable = &Error{Code: CodeSalesforceUnavailable}
	ErrTimeout               = &Error{Code: CodeTimeout}
	ErrInternal              = &Error{Code: CodeInternal}
)

// Error is the error of a failed job. [errors.Is] matches on Code (and on
// SalesforceCode when the target sets one), so errors.Is(err,
// sfblocks.ErrTimeout) and errors.Is(err, &sfblocks.Error{Code:
// sfblocks.CodeSalesforceError, SalesforceCode: "UNABLE_TO_LOCK_ROW"}) both
// work. Message never holds a secret or a record's field value;
// Salesforce's own explanation, which may quote values, is only in
// ResultBody.
type Error struct {
	// Code is the stable code.
	Code Code
	// Message says what went wrong and what to do about it.
	Message string
	// SalesforceCode is Salesforce's errorCode, for CodeSalesforceError (and
	// set when known on other codes, such as REQUEST_LIMIT_EXCEEDED).
	SalesforceCode string
	// Retryable reports whether sending the same job later may succeed.
	Retryable bool
	// ResultCode is Salesforce's HTTP status, when Salesforce answered.
	ResultCode int
	// ResultBody is Salesforce's raw answer (truncated to 8 KiB), when
	// Salesforce answered.
	ResultBody string
	// Err is the cause, if any. It is never sent on the wire.
	Err error
}

// Error implements error: "sfblocks: CODE (SALESFORCE_CODE): message".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("sfblocks: ")
	b.WriteString(string(e.Code))
	if e.SalesforceCode != "" {
		b.WriteString(" (")
		b.WriteString(e.SalesforceCode)
		b.WriteString(")")
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error with the same Code and, when the
// target sets one, the same SalesforceCode.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	return t.Code == e.Code && (t.SalesforceCode == "" || t.SalesforceCode == e.SalesforceCode)
}

// Info returns the reply form of e, the error member of a failed [Reply].
func (e *Error) Info() *ErrorInfo {
	return &ErrorInfo{Code: e.Code, Message: e.Message, SalesforceCode: e.SalesforceCode, Retryable: e.Retryable}
}

// Failure returns the failed reply of job id carrying e: status failed,
// error, result_code and result_body, and e itself in [Reply.Err].
func (e *Error) Failure(id string) *Reply {
	return &Reply{
		ID:         id,
		Status:     StatusFailed,
		ResultCode: e.ResultCode,
		ResultBody: e.ResultBody,
		Error:      e.Info(),
		Err:        e,
	}
}
