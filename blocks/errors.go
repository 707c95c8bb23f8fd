package blocks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks/salesforce"
	"github.com/sfblocks/sfblocks/blocks/salesforce/breaker"
)

// invalidf is an INVALID_REQUEST error whose message names the problem.
func invalidf(format string, args ...any) *sfblocks.Error {
	return &sfblocks.Error{Code: sfblocks.CodeInvalidRequest, Message: fmt.Sprintf(format, args...)}
}

// CodedError is how [AsError] recognises errors of a token source without
// importing it: any error in the chain with an ErrorCode method (package
// auth's *Error has one) is sorted by that code. "AUTH_FAILED",
// "NOT_AUTHORIZED" and "TOKEN_KEY_MISMATCH" (the worker cannot decrypt the
// fleet's stored tokens) become [sfblocks.CodeAuthFailed] (not retryable),
// "UNKNOWN_ACCOUNT" becomes [sfblocks.CodeUnknownAccount], and every other
// code becomes [sfblocks.CodeSalesforceUnavailable] (retryable).
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
//     KindRateLimited → RATE_LIMITED, retryable; KindConcurrencyLimited →
//     RATE_LIMITED, retryable, saying to retry in seconds (see [LimitOf]);
//     KindSessionExpired → AUTH_FAILED, not retryable;
//   - any other error from the token source → SALESFORCE_UNAVAILABLE,
//     retryable;
//   - [salesforce.ErrInvalidName] → INVALID_REQUEST;
//   - anything else → INTERNAL, not retryable.
//
// AsError(nil) is nil.
func AsError(err error) *sfblocks.Error {
	if err == nil {
		return nil
	}
	var be *sfblocks.Error
	if errors.As(err, &be) {
		return be
	}
	// Before the context and token checks: an open breaker also refuses
	// token requests, and package auth wraps that in its own coded error.
	var open *breaker.OpenError
	if errors.As(err, &open) {
		return &sfblocks.Error{Code: sfblocks.CodeSalesforceUnavailable, Retryable: true, Err: err,
			Message: fmt.Sprintf("Salesforce is failing for account %q, so its circuit breaker is open and the call was not sent; retry after %s",
				open.Account, open.RetryAt.UTC().Format(time.RFC3339))}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &sfblocks.Error{Code: sfblocks.CodeTimeout, Retryable: true, Err: err,
			Message: "the job's deadline passed before Salesforce answered; retry, or raise timeout_ms"}
	}
	if errors.Is(err, context.Canceled) {
		return &sfblocks.Error{Code: sfblocks.CodeTimeout, Retryable: true, Err: err,
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
		return &sfblocks.Error{Code: sfblocks.CodeInvalidRequest, Err: err, Message: err.Error()}
	}
	if salesforce.Classify(err) == salesforce.KindTransient {
		return &sfblocks.Error{Code: sfblocks.CodeSalesforceUnavailable, Retryable: true, Err: err,
			Message: "could not reach Salesforce (" + err.Error() + "); retry later"}
	}
	// A token source failure without a code (a source that is not package
	// auth) is retryable: no request reached Salesforce.
	var tokErr *salesforce.TokenError
	if errors.As(err, &tokErr) {
		return &sfblocks.Error{Code: sfblocks.CodeSalesforceUnavailable, Retryable: true, Err: err,
			Message: "could not get an access token for the account; retry later"}
	}
	return &sfblocks.Error{Code: sfblocks.CodeInternal, Err: err, Message: "unexpected failure: " + err.Error()}
}

func fromCodedError(code string, err error) *sfblocks.Error {
	switch code {
	case "AUTH_FAILED", "NOT_AUTHORIZED":
		return &sfblocks.Error{Code: sfblocks.CodeAuthFailed, Err: err,
			Message: "the account's Salesforce authorization failed (" + code + "); an operator must re-authorize it (sfblocks authorize)"}
	case "TOKEN_KEY_MISMATCH":
		return &sfblocks.Error{Code: sfblocks.CodeAuthFailed, Err: err,
			Message: "this worker cannot decrypt the account's stored token (TOKEN_KEY_MISMATCH): its SFBLOCKS_TOKEN_KEY is not the key the fleet's tokens are sealed with; give it the fleet's key (while rotating keys, the other one as SFBLOCKS_TOKEN_KEY_PREVIOUS), then replay the job"}
	case "UNKNOWN_ACCOUNT":
		return &sfblocks.Error{Code: sfblocks.CodeUnknownAccount, Err: err,
			Message: "the account is not configured; check the job's account or the worker's configuration"}
	}
	return &sfblocks.Error{Code: sfblocks.CodeSalesforceUnavailable, Retryable: true, Err: err,
		Message: "could not get an access token for the account (" + code + "); retry later"}
}

func fromAPIError(a *salesforce.APIError, err error) *sfblocks.Error {
	e := &sfblocks.Error{Err: err, SalesforceCode: a.ErrorCode, ResultCode: a.StatusCode, ResultBody: string(a.Body)}
	status := "HTTP " + strconv.Itoa(a.StatusCode)
	switch salesforce.Classify(a) {
	case salesforce.KindRateLimited:
		e.Code, e.Retryable = sfblocks.CodeRateLimited, true
		e.Message = "the org's API request limit is exhausted (" + a.ErrorCode + ", " + status + "); retry after the limit window"
	case salesforce.KindConcurrencyLimited:
		e.Code, e.Retryable = sfblocks.CodeRateLimited, true
		e.Message = "the org is running its limit of concurrent long-running requests (REQUEST_LIMIT_EXCEEDED ConcurrentRequests, " + status + "); retry in a few seconds"
	case salesforce.KindSessionExpired:
		e.Code = sfblocks.CodeAuthFailed
		e.Message = "Salesforce rejected the account's session even after a token refresh (" + status + "); re-authorize the account"
	case salesforce.KindTransient:
		e.Retryable = true
		if a.ErrorCode == salesforce.CodeUnableToLockRow {
			e.Code = sfblocks.CodeSalesforceError
			e.Message = "the record is locked by another update (UNABLE_TO_LOCK_ROW); retry"
		} else {
			e.Code = sfblocks.CodeSalesforceUnavailable
			e.Message = "Salesforce is unavailable (" + a.ErrorCode + ", " + status + "); retry later"
		}
	default:
		e.Code = sfblocks.CodeSalesforceError
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

// Limit is which of the org's request limits refused a job.
type Limit int

const (
	// LimitNone: no request limit refused the job.
	LimitNone Limit = iota
	// LimitDaily: the org's daily API request allocation is spent
	// (REQUEST_LIMIT_EXCEEDED "TotalRequests Limit exceeded.", or 429).
	// It comes back as the rolling 24-hour usage falls.
	LimitDaily
	// LimitConcurrent: the org is running its limit of long-running
	// requests (REQUEST_LIMIT_EXCEEDED "ConcurrentRequests ..."). It comes
	// back within seconds.
	LimitConcurrent
)

// LimitOf reports which request limit refused a failed reply's job, from
// the Salesforce answer the reply carries.
func LimitOf(r *sfblocks.Reply) Limit {
	if r == nil || r.Status != sfblocks.StatusFailed || r.Error == nil || r.Error.Code != sfblocks.CodeRateLimited {
		return LimitNone
	}
	var a *salesforce.APIError
	if errors.As(r.Err, &a) {
		if salesforce.Classify(a) == salesforce.KindConcurrencyLimited {
			return LimitConcurrent
		}
		return LimitDaily
	}
	// A reply decoded from the wire keeps Salesforce's answer in
	// result_body.
	var arr []struct {
		ErrorCode string `json:"errorCode"`
		Message   string `json:"message"`
	}
	if json.Unmarshal([]byte(r.ResultBody), &arr) == nil && len(arr) > 0 && salesforce.IsConcurrencyLimit(arr[0].ErrorCode, arr[0].Message) {
		return LimitConcurrent
	}
	return LimitDaily
}
