package blocks

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sfblocks/sfblocks/blocks/salesforce"
	"github.com/sfblocks/sfblocks/blocks/salesforce/breaker"
)

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
	// refused without sending (see package breaker): the message names the
	// account and roughly when it lets calls through again.
	CodeSalesforceUnavailable Code = "SALESFORCE_UNAVAILABLE"
	// CodeTimeout: the job's deadline (timeout_ms, or the executor's
	// default) passed before Salesforce answered. Retryable; an Insert that
	// timed out may nevertheless have created its record, which is why
	// external_id (upsert) is the safe way to retry inserts.
	CodeTimeout Code = "TIMEOUT"
	// CodeInternal: a bug or an answer sfblocks did not expect. Not
	// retryable.
	CodeInternal Code = "INTERNAL"
)

// Error is the error of a failed job. [errors.Is] matches on Code (and on
// SalesforceCode when the target sets one), so
//
//	errors.Is(err, &blocks.Error{Code: blocks.CodeTimeout})
//
// works on any error chain holding an *Error. Message never holds a secret
// or a record's field value; Salesforce's own explanation, which may quote
// values, is only in ResultBody.
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
	// Err is the cause, if any.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("blocks: ")
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

// info returns the reply form of e.
func (e *Error) info() *ErrorInfo {
	return &ErrorInfo{Code: e.Code, Message: e.Message, SalesforceCode: e.SalesforceCode, Retryable: e.Retryable}
}

func invalidf(format string, args ...any) *Error {
	return &Error{Code: CodeInvalidRequest, Message: fmt.Sprintf(format, args...)}
}

// CodedError is how [AsError] recognises errors of a token source without
// importing it: any error in the chain with an ErrorCode method (package
// auth's *Error has one) is sorted by that code. "AUTH_FAILED" and
// "NOT_AUTHORIZED" become [CodeAuthFailed] (not retryable), "UNKNOWN_ACCOUNT"
// becomes [CodeUnknownAccount], and every other code becomes
// [CodeSalesforceUnavailable] (retryable).
type CodedError interface {
	error
	ErrorCode() string
}

// AsError classifies any error into an *Error:
//
//   - an *Error in the chain is returned as is;
//   - a [breaker.OpenError] (the account's circuit breaker is open, the call
//     was not sent) → SALESFORCE_UNAVAILABLE, retryable, naming the account
//     and the retry time; the *breaker.OpenError stays in Err for callers
//     that pause until its RetryAt;
//   - context.DeadlineExceeded (the job's deadline) → TIMEOUT, retryable;
//     context.Canceled → TIMEOUT, retryable (the worker gave up on the job);
//   - a token source's [CodedError] → see [CodedError];
//   - a Salesforce error, by [salesforce.Classify]: KindPermanent →
//     SALESFORCE_ERROR with salesforce_code, not retryable; KindTransient →
//     SALESFORCE_UNAVAILABLE, retryable (but UNABLE_TO_LOCK_ROW →
//     SALESFORCE_ERROR with salesforce_code UNABLE_TO_LOCK_ROW, retryable);
//     KindRateLimited → RATE_LIMITED, retryable; KindSessionExpired →
//     AUTH_FAILED, not retryable;
//   - any other error from the token source → SALESFORCE_UNAVAILABLE,
//     retryable;
//   - [salesforce.ErrInvalidName] → INVALID_REQUEST;
//   - anything else → INTERNAL, not retryable.
//
// AsError(nil) is nil.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var be *Error
	if errors.As(err, &be) {
		return be
	}
	// Before the context and token checks: an open breaker also refuses
	// token requests, and package auth wraps that in its own coded error.
	var open *breaker.OpenError
	if errors.As(err, &open) {
		return &Error{Code: CodeSalesforceUnavailable, Retryable: true, Err: err,
			Message: fmt.Sprintf("Salesforce is failing for account %q, so its circuit breaker is open and the call was not sent; retry after %s",
				open.Account, open.RetryAt.UTC().Format(time.RFC3339))}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Code: CodeTimeout, Retryable: true, Err: err,
			Message: "the job's deadline passed before Salesforce answered; retry, or raise timeout_ms"}
	}
	if errors.Is(err, context.Canceled) {
		return &Error{Code: CodeTimeout, Retryable: true, Err: err,
			Message: "the job was cancelled before Salesforce answered (the worker is stopping or gave up); retry"}
	}
	var apiErr *salesforce.APIError
	if errors.As(err, &apiErr) {
		return fromAPIError(apiErr, err)
	}
	var coded CodedError
	if errors.As(err, &coded) {
		return fromCodedError(coded.ErrorCode(), err)
	}
	if errors.Is(err, salesforce.ErrInvalidName) {
		return &Error{Code: CodeInvalidRequest, Err: err, Message: err.Error()}
	}
	if salesforce.Classify(err) == salesforce.KindTransient {
		return &Error{Code: CodeSalesforceUnavailable, Retryable: true, Err: err,
			Message: "could not reach Salesforce (" + err.Error() + "); retry later"}
	}
	// A token source failure without a code (a source that is not package
	// auth) is retryable: no request reached Salesforce.
	var tokErr *salesforce.TokenError
	if errors.As(err, &tokErr) {
		return &Error{Code: CodeSalesforceUnavailable, Retryable: true, Err: err,
			Message: "could not get an access token for the account; retry later"}
	}
	return &Error{Code: CodeInternal, Err: err, Message: "unexpected failure: " + err.Error()}
}

func fromCodedError(code string, err error) *Error {
	switch code {
	case "AUTH_FAILED", "NOT_AUTHORIZED":
		return &Error{Code: CodeAuthFailed, Err: err,
			Message: "the account's Salesforce authorization failed (" + code + "); an operator must re-authorize it (sfblocks authorize)"}
	case "UNKNOWN_ACCOUNT":
		return &Error{Code: CodeUnknownAccount, Err: err,
			Message: "the account is not configured; check the job's account or the worker's configuration"}
	}
	return &Error{Code: CodeSalesforceUnavailable, Retryable: true, Err: err,
		Message: "could not get an access token for the account (" + code + "); retry later"}
}

func fromAPIError(a *salesforce.APIError, err error) *Error {
	e := &Error{Err: err, SalesforceCode: a.ErrorCode, ResultCode: a.StatusCode, ResultBody: string(a.Body)}
	status := "HTTP " + strconv.Itoa(a.StatusCode)
	switch salesforce.Classify(a) {
	case salesforce.KindRateLimited:
		e.Code, e.Retryable = CodeRateLimited, true
		e.Message = "the org's API request limit is exhausted (" + a.ErrorCode + ", " + status + "); retry after the limit window"
	case salesforce.KindSessionExpired:
		e.Code = CodeAuthFailed
		e.Message = "Salesforce rejected the account's session even after a token refresh (" + status + "); re-authorize the account"
	case salesforce.KindTransient:
		e.Retryable = true
		if a.ErrorCode == salesforce.CodeUnableToLockRow {
			e.Code = CodeSalesforceError
			e.Message = "the record is locked by another update (UNABLE_TO_LOCK_ROW); retry"
		} else {
			e.Code = CodeSalesforceUnavailable
			e.Message = "Salesforce is unavailable (" + a.ErrorCode + ", " + status + "); retry later"
		}
	default:
		e.Code = CodeSalesforceError
		e.Message = permanentMessage(a, status)
	}
	return e
}

// permanentMessage explains a refusal without quoting Salesforce's message,
// which can echo the statement or a field value; the full text is in
// result_body.
func permanentMessage(a *salesforce.APIError, status string) string {
	var hint string
	switch a.ErrorCode {
	case salesforce.CodeMalformedQuery:
		hint = "the statement is not valid SOQL/SOSL"
	case salesforce.CodeInvalidField:
		hint = "a field name is not valid for this object in this org"
	case salesforce.CodeInvalidType:
		hint = "the object is not known to this org or not accessible to the account"
	case salesforce.CodeRequiredFieldMissing:
		hint = "required fields are missing"
	case salesforce.CodeDuplicateValue:
		hint = "a unique field already holds this value on another record"
	case salesforce.CodeValidationRule:
		hint = "a validation rule of the org refused the record"
	case salesforce.CodeNotFound:
		hint = "the object, record or external ID field does not exist or is not accessible"
	case salesforce.CodeMultipleChoices:
		hint = "the external ID value matches several records; make the field unique"
	case salesforce.CodeJSONParserError:
		hint = "a field value has the wrong type for its field"
	default:
		hint = "Salesforce refused the request"
	}
	msg := hint + " (" + a.ErrorCode + ", " + status + ")"
	if len(a.Fields) > 0 {
		msg += "; fields: " + strings.Join(a.Fields, ", ")
	}
	return msg + "; Salesforce's explanation is in result_body"
}
