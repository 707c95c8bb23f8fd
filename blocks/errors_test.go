package blocks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks/salesforce"
	"github.com/sfblocks/sfblocks/blocks/salesforce/breaker"
)

// codedErr stands in for package auth's error, which AsError must recognise
// without importing auth.
type codedErr struct{ code string }

func (e *codedErr) Error() string     { return "auth: " + e.code + ": refresh token revoked" }
func (e *codedErr) ErrorCode() string { return e.code }

func apiErr(status int, code string) *salesforce.APIError {
	body := fmt.Sprintf(`[{"message":"secret value 555-0100 in message","errorCode":%q}]`, code)
	return &salesforce.APIError{StatusCode: status, ErrorCode: code, Message: "secret value 555-0100 in message", Body: []byte(body)}
}

func TestAsError(t *testing.T) {
	tests := []struct {
		name          string
		given         error
		wantCode      sfblocks.Code
		wantSFCode    string
		wantRetryable bool
		wantResult    int
	}{
		{name: "malformed query", given: apiErr(400, "MALFORMED_QUERY"), wantCode: sfblocks.CodeSalesforceError, wantSFCode: "MALFORMED_QUERY", wantResult: 400},
		{name: "required field", given: apiErr(400, "REQUIRED_FIELD_MISSING"), wantCode: sfblocks.CodeSalesforceError, wantSFCode: "REQUIRED_FIELD_MISSING", wantResult: 400},
		{name: "not found", given: apiErr(404, "NOT_FOUND"), wantCode: sfblocks.CodeSalesforceError, wantSFCode: "NOT_FOUND", wantResult: 404},
		{name: "multiple choices", given: apiErr(300, "MULTIPLE_CHOICES"), wantCode: sfblocks.CodeSalesforceError, wantSFCode: "MULTIPLE_CHOICES", wantResult: 300},
		{name: "lock row", given: apiErr(400, "UNABLE_TO_LOCK_ROW"), wantCode: sfblocks.CodeSalesforceError, wantSFCode: "UNABLE_TO_LOCK_ROW", wantRetryable: true, wantResult: 400},
		{name: "server unavailable", given: apiErr(503, "SERVER_UNAVAILABLE"), wantCode: sfblocks.CodeSalesforceUnavailable, wantSFCode: "SERVER_UNAVAILABLE", wantRetryable: true, wantResult: 503},
		{name: "500", given: apiErr(500, "UNKNOWN_EXCEPTION"), wantCode: sfblocks.CodeSalesforceUnavailable, wantSFCode: "UNKNOWN_EXCEPTION", wantRetryable: true, wantResult: 500},
		{name: "rate limited", given: apiErr(403, "REQUEST_LIMIT_EXCEEDED"), wantCode: sfblocks.CodeRateLimited, wantSFCode: "REQUEST_LIMIT_EXCEEDED", wantRetryable: true, wantResult: 403},
		{name: "429", given: apiErr(429, "HTTP_ERROR"), wantCode: sfblocks.CodeRateLimited, wantSFCode: "HTTP_ERROR", wantRetryable: true, wantResult: 429},
		{name: "session expired", given: apiErr(401, "INVALID_SESSION_ID"), wantCode: sfblocks.CodeAuthFailed, wantSFCode: "INVALID_SESSION_ID", wantResult: 401},
		{name: "wrapped api error", given: fmt.Errorf("query: %w", apiErr(400, "INVALID_FIELD")), wantCode: sfblocks.CodeSalesforceError, wantSFCode: "INVALID_FIELD", wantResult: 400},
		{name: "auth failed", given: &salesforce.TokenError{Err: &codedErr{"AUTH_FAILED"}}, wantCode: sfblocks.CodeAuthFailed},
		{name: "not authorized", given: &salesforce.TokenError{Err: &codedErr{"NOT_AUTHORIZED"}}, wantCode: sfblocks.CodeAuthFailed},
		{name: "token key mismatch", given: &salesforce.TokenError{Err: &codedErr{"TOKEN_KEY_MISMATCH"}}, wantCode: sfblocks.CodeAuthFailed},
		{name: "auth unknown account", given: &codedErr{"UNKNOWN_ACCOUNT"}, wantCode: sfblocks.CodeUnknownAccount},
		{name: "auth unavailable", given: &salesforce.TokenError{Err: &codedErr{"AUTH_UNAVAILABLE"}}, wantCode: sfblocks.CodeSalesforceUnavailable, wantRetryable: true},
		{name: "plain token source error", given: &salesforce.TokenError{Err: errors.New("disk full")}, wantCode: sfblocks.CodeSalesforceUnavailable, wantRetryable: true},
		{name: "deadline", given: fmt.Errorf("salesforce: GET /query: %w", context.DeadlineExceeded), wantCode: sfblocks.CodeTimeout, wantRetryable: true},
		{name: "deadline inside auth error", given: fmt.Errorf("x: %w", fmt.Errorf("%w: %w", &codedErr{"AUTH_UNAVAILABLE"}, context.DeadlineExceeded)), wantCode: sfblocks.CodeTimeout, wantRetryable: true},
		{name: "canceled", given: context.Canceled, wantCode: sfblocks.CodeTimeout, wantRetryable: true},
		{name: "connection refused", given: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, wantCode: sfblocks.CodeSalesforceUnavailable, wantRetryable: true},
		{name: "invalid name", given: fmt.Errorf("%w: object %q", salesforce.ErrInvalidName, "x y"), wantCode: sfblocks.CodeInvalidRequest},
		{name: "unexpected", given: errors.New("salesforce: decode response: unexpected EOF"), wantCode: sfblocks.CodeInternal},
		{name: "blocks error kept", given: fmt.Errorf("wrapped: %w", &sfblocks.Error{Code: sfblocks.CodeUnknownAccount, Message: "m"}), wantCode: sfblocks.CodeUnknownAccount},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := AsError(tt.given)
			if e.Code != tt.wantCode || e.SalesforceCode != tt.wantSFCode || e.Retryable != tt.wantRetryable || e.ResultCode != tt.wantResult {
				t.Fatalf("AsError = code %s sf %q retryable %v result %d; want %s %q %v %d",
					e.Code, e.SalesforceCode, e.Retryable, e.ResultCode, tt.wantCode, tt.wantSFCode, tt.wantRetryable, tt.wantResult)
			}
			if e.Message == "" {
				t.Error("empty message")
			}
			if strings.Contains(e.Message, "555-0100") {
				t.Errorf("message %q quotes Salesforce's message, which may hold record values", e.Message)
			}
			if tt.wantResult != 0 && !strings.Contains(e.ResultBody, tt.wantSFCode) {
				t.Errorf("result body %q lacks Salesforce's answer", e.ResultBody)
			}
			if !errors.Is(e, &sfblocks.Error{Code: tt.wantCode}) {
				t.Errorf("errors.Is does not match on the code")
			}
			if tt.wantSFCode != "" && errors.Is(e, &sfblocks.Error{Code: tt.wantCode, SalesforceCode: "OTHER"}) {
				t.Errorf("errors.Is ignores SalesforceCode")
			}
			r := FailureReply("j1", tt.given)
			if r.Status != sfblocks.StatusFailed || r.Error.Code != tt.wantCode || r.Error.Retryable != tt.wantRetryable || r.ResultCode != tt.wantResult || r.ID != "j1" {
				t.Errorf("FailureReply = %+v %+v", r, r.Error)
			}
		})
	}
	if AsError(nil) != nil {
		t.Error("AsError(nil) != nil")
	}
	if r := FailureReply("x", nil); r.Error.Code != sfblocks.CodeInternal {
		t.Errorf("FailureReply(nil) code = %s", r.Error.Code)
	}
}

// codedWrapErr stands in for package auth's error when it wraps a cause, as
// AUTH_UNAVAILABLE does around a token request the breaker refused.
type codedWrapErr struct {
	code string
	err  error
}

func (e *codedWrapErr) Error() string     { return "auth: " + e.code + ": " + e.err.Error() }
func (e *codedWrapErr) ErrorCode() string { return e.code }
func (e *codedWrapErr) Unwrap() error     { return e.err }

func TestAsErrorBreakerOpen(t *testing.T) {
	retryAt := time.Date(2026, 3, 1, 12, 0, 30, 0, time.UTC)
	open := &breaker.OpenError{Account: "prod", State: breaker.StateOpen, RetryAt: retryAt}
	viaHTTP := &url.Error{Op: "Get", URL: "https://acme.my.salesforce.com/services/data/v66.0/query", Err: open}
	tests := []struct {
		name  string
		given error
	}{
		{name: "bare", given: open},
		{name: "data call through the HTTP client", given: fmt.Errorf("salesforce: GET /query: %w", viaHTTP)},
		{name: "token request refused, wrapped by auth", given: &salesforce.TokenError{Err: &codedWrapErr{code: "AUTH_UNAVAILABLE", err: viaHTTP}}},
		{name: "half-open probes taken", given: &breaker.OpenError{Account: "prod", State: breaker.StateHalfOpen, RetryAt: retryAt}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := AsError(tt.given)
			if e.Code != sfblocks.CodeSalesforceUnavailable || !e.Retryable || e.ResultCode != 0 {
				t.Fatalf("AsError = %s retryable %v result %d; want SALESFORCE_UNAVAILABLE, retryable", e.Code, e.Retryable, e.ResultCode)
			}
			for _, want := range []string{`"prod"`, "circuit breaker is open", "2026-03-01T12:00:30Z"} {
				if !strings.Contains(e.Message, want) {
					t.Errorf("message %q lacks %q", e.Message, want)
				}
			}
			var got *breaker.OpenError
			if !errors.As(e, &got) || !got.RetryAt.Equal(retryAt) || !errors.Is(e, breaker.ErrOpen) {
				t.Errorf("the *breaker.OpenError is not reachable from the job error (errors.As %v)", got)
			}
		})
	}
}
