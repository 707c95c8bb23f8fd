package salesforce

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
)

// Salesforce errorCodes the client and its callers act on. Salesforce
// defines many more; an [*APIError] carries whatever code it returned.
const (
	CodeInvalidSessionID     = "INVALID_SESSION_ID"
	CodeRequestLimit         = "REQUEST_LIMIT_EXCEEDED"
	CodeUnableToLockRow      = "UNABLE_TO_LOCK_ROW"
	CodeServerUnavailable    = "SERVER_UNAVAILABLE"
	CodeMalformedQuery       = "MALFORMED_QUERY"
	CodeInvalidField         = "INVALID_FIELD"
	CodeInvalidType          = "INVALID_TYPE"
	CodeRequiredFieldMissing = "REQUIRED_FIELD_MISSING"
	CodeDuplicateValue       = "DUPLICATE_VALUE"
	CodeValidationRule       = "FIELD_CUSTOM_VALIDATION_EXCEPTION"
	CodeNotFound             = "NOT_FOUND"
	CodeJSONParserError      = "JSON_PARSER_ERROR"
	CodeInvalidQueryLocator  = "INVALID_QUERY_LOCATOR"
	// CodeMultipleChoices is not a Salesforce errorCode: the client sets it
	// on the [*APIError] for an upsert answered 300 Multiple Choices, when the
	// external ID matched several records.
	CodeMultipleChoices = "MULTIPLE_CHOICES"
	// CodeHTTPError is set when Salesforce (or a proxy in front of it)
	// answered an error status without Salesforce's JSON error array.
	CodeHTTPError = "HTTP_ERROR"
)

// APIError is an error response from Salesforce: the HTTP status and the
// first element of Salesforce's error array
// [{"message","errorCode","fields"}]. Body keeps the raw response (at most
// [maxErrorBody] bytes) for callers that report it verbatim, as a scenario's
// integrationResultBody does.
type APIError struct {
	StatusCode int
	ErrorCode  string
	Message    string
	Fields     []string
	// Matches holds the record URLs of a 300 Multiple Choices upsert answer.
	Matches []string
	// Body is the raw response body, truncated.
	Body []byte
}

const maxErrorBody = 8 << 10

// Error implements error.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "salesforce: %d %s", e.StatusCode, e.ErrorCode)
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(strings.TrimSpace(e.Message))
	}
	if len(e.Fields) > 0 {
		fmt.Fprintf(&b, " (fields: %s)", strings.Join(e.Fields, ", "))
	}
	return b.String()
}

// Is reports whether target is an *APIError with the same ErrorCode (and the
// same StatusCode, when target sets one), so errors.Is(err,
// &APIError{ErrorCode: CodeMalformedQuery}) works.
func (e *APIError) Is(target error) bool {
	t, ok := target.(*APIError)
	if !ok {
		return false
	}
	return (t.ErrorCode == "" || t.ErrorCode == e.ErrorCode) &&
		(t.StatusCode == 0 || t.StatusCode == e.StatusCode)
}

// Kind sorts errors by what a caller should do about them.
type Kind int

const (
	// KindNone is the kind of a nil error.
	KindNone Kind = iota
	// KindPermanent: the request itself is wrong (MALFORMED_QUERY,
	// INVALID_FIELD, REQUIRED_FIELD_MISSING, DUPLICATE_VALUE, ...); sending
	// it again gives the same answer.
	KindPermanent
	// KindTransient: Salesforce or the network was unwell (UNABLE_TO_LOCK_ROW,
	// 5xx, timeouts, refused or reset connections); a later retry may work.
	KindTransient
	// KindRateLimited: 403 REQUEST_LIMIT_EXCEEDED for the org's daily
	// request allocation ("TotalRequests Limit exceeded."), or 429; retry
	// once the rolling 24-hour usage has come down.
	KindRateLimited
	// KindSessionExpired: 401 INVALID_SESSION_ID that survived the client's
	// own refresh-and-retry; the account's authorization needs attention.
	KindSessionExpired
	// KindConcurrencyLimited: 403 REQUEST_LIMIT_EXCEEDED for the org's
	// limit on concurrent long-running requests ("ConcurrentRequests
	// (Concurrent API Requests) Limit exceeded."): the org is running its
	// limit of requests of 20 s or more (25 in production, 5 in Developer
	// and trial orgs). Retry in a few seconds; nothing is wrong with the
	// account.
	KindConcurrencyLimited
)

// concurrentLimitPrefix starts the message of the concurrent-request
// limit; the daily limit's is "TotalRequests Limit exceeded.". Both have
// errorCode REQUEST_LIMIT_EXCEEDED: only the message tells them apart.
const concurrentLimitPrefix = "ConcurrentRequests"

// IsConcurrencyLimit reports whether a REQUEST_LIMIT_EXCEEDED answer is
// the concurrent-request limit rather than the daily allocation.
func IsConcurrencyLimit(errorCode, message string) bool {
	return errorCode == CodeRequestLimit && strings.HasPrefix(strings.TrimSpace(message), concurrentLimitPrefix)
}

// String returns the kind's name, for logs and metrics.
func (k Kind) String() string {
	switch k {
	case KindNone:
		return "none"
	case KindPermanent:
		return "permanent"
	case KindTransient:
		return "transient"
	case KindRateLimited:
		return "rate_limited"
	case KindSessionExpired:
		return "session_expired"
	case KindConcurrencyLimited:
		return "concurrency_limited"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Classify sorts err, as returned by a [Client] method, into a [Kind].
// Errors the client does not recognise (a token source's own errors
// included, unless they wrap a recognised one) are [KindPermanent]: a caller
// that wants them retried must say so itself.
func Classify(err error) Kind {
	if err == nil {
		return KindNone
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return classifyAPIError(apiErr)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return KindTransient
	}
	if errors.Is(err, context.Canceled) {
		return KindTransient
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return KindTransient
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, io.ErrUnexpectedEOF) {
		return KindTransient
	}
	var te *transportError
	if errors.As(err, &te) {
		return KindTransient
	}
	return KindPermanent
}

func classifyAPIError(e *APIError) Kind {
	switch e.ErrorCode {
	case CodeInvalidSessionID:
		return KindSessionExpired
	case CodeRequestLimit:
		if IsConcurrencyLimit(e.ErrorCode, e.Message) {
			return KindConcurrencyLimited
		}
		return KindRateLimited
	case CodeUnableToLockRow, CodeServerUnavailable:
		return KindTransient
	}
	switch {
	case e.StatusCode >= 500:
		return KindTransient
	case e.StatusCode == http.StatusTooManyRequests:
		return KindRateLimited
	case e.StatusCode == http.StatusRequestTimeout:
		return KindTransient
	}
	return KindPermanent
}

// transportError marks a failure to talk to Salesforce at all: the request
// may or may not have reached it.
type transportError struct {
	op   string // the request's name, never a record value
	host string // the Salesforce host, "" when unknown
	err  error  // the cause, its URL removed
}

func (e *transportError) Error() string {
	if e.host == "" {
		return "salesforce: " + e.op + ": " + e.err.Error()
	}
	return "salesforce: " + e.op + " on " + e.host + ": " + e.err.Error()
}
func (e *transportError) Unwrap() error { return e.err }

// ErrInvalidName is returned, before any request is made, when an object or
// field name is not a valid Salesforce API name. Names go into URL paths, so
// the client refuses anything else rather than escaping it.
var ErrInvalidName = errors.New("salesforce: invalid API name")

// TokenError wraps a failure of the [TokenSource]: no request was sent.
// Whether it is worth retrying is the token source's to say (package auth's
// errors carry a code); [Classify] treats it by what it wraps.
type TokenError struct {
	Err error
}

// Error implements error.
func (e *TokenError) Error() string { return "salesforce: get access token: " + e.Err.Error() }

// Unwrap returns the token source's error.
func (e *TokenError) Unwrap() error { return e.Err }
