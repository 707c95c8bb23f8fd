package sfblocks_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/sfblocks/sfblocks"
)

func TestErrorString(t *testing.T) {
	e := &sfblocks.Error{Code: sfblocks.CodeSalesforceError, SalesforceCode: "MALFORMED_QUERY", Message: "bad", Err: errors.New("cause")}
	if got, want := e.Error(), "sfblocks: SALESFORCE_ERROR (MALFORMED_QUERY): bad"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if errors.Unwrap(e).Error() != "cause" {
		t.Error("Unwrap lost the cause")
	}
}

func TestSentinelsMatchByCode(t *testing.T) {
	sentinels := map[sfblocks.Code]error{
		sfblocks.CodeInvalidRequest:        sfblocks.ErrInvalidRequest,
		sfblocks.CodeUnknownAccount:        sfblocks.ErrUnknownAccount,
		sfblocks.CodeAuthFailed:            sfblocks.ErrAuthFailed,
		sfblocks.CodeSalesforceError:       sfblocks.ErrSalesforceError,
		sfblocks.CodeRateLimited:           sfblocks.ErrRateLimited,
		sfblocks.CodeSalesforceUnavailable: sfblocks.ErrSalesforceUnavailable,
		sfblocks.CodeTimeout:               sfblocks.ErrTimeout,
		sfblocks.CodeInternal:              sfblocks.ErrInternal,
	}
	for code, sentinel := range sentinels {
		t.Run(string(code), func(t *testing.T) {
			err := fmt.Errorf("running job: %w", &sfblocks.Error{Code: code, Message: "some message"})
			if !errors.Is(err, sentinel) {
				t.Errorf("errors.Is(%v, Err for %s) = false", err, code)
			}
			for other, s := range sentinels {
				if other != code && errors.Is(err, s) {
					t.Errorf("an error with code %s matches the sentinel of %s", code, other)
				}
			}
		})
	}
}

func TestIsWithSalesforceCode(t *testing.T) {
	err := &sfblocks.Error{Code: sfblocks.CodeSalesforceError, SalesforceCode: "UNABLE_TO_LOCK_ROW"}
	tests := []struct {
		name   string
		target error
		want   bool
	}{
		{"code only", sfblocks.ErrSalesforceError, true},
		{"same salesforce code", &sfblocks.Error{Code: sfblocks.CodeSalesforceError, SalesforceCode: "UNABLE_TO_LOCK_ROW"}, true},
		{"other salesforce code", &sfblocks.Error{Code: sfblocks.CodeSalesforceError, SalesforceCode: "MALFORMED_QUERY"}, false},
		{"other code", sfblocks.ErrTimeout, false},
		{"not an *Error", errors.New("SALESFORCE_ERROR"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := errors.Is(err, tt.target); got != tt.want {
				t.Errorf("errors.Is = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestHTTPStatus(t *testing.T) {
	tests := []struct {
		given sfblocks.Code
		want  int
	}{
		{sfblocks.CodeInvalidRequest, 400},
		{sfblocks.CodeUnknownAccount, 404},
		{sfblocks.CodeRateLimited, 429},
		{sfblocks.CodeInternal, 500},
		{sfblocks.CodeAuthFailed, 502},
		{sfblocks.CodeSalesforceError, 502},
		{sfblocks.CodeSalesforceUnavailable, 503},
		{sfblocks.CodeTimeout, 504},
		{"SOMETHING_NEW", 500},
	}
	for _, tt := range tests {
		if got := tt.given.HTTPStatus(); got != tt.want {
			t.Errorf("%s.HTTPStatus() = %d, want %d", tt.given, got, tt.want)
		}
	}
}

func TestFailureAndAsErrorRoundTrip(t *testing.T) {
	e := &sfblocks.Error{Code: sfblocks.CodeSalesforceError, SalesforceCode: "REQUIRED_FIELD_MISSING",
		Message: "required fields are missing", ResultCode: 400, ResultBody: `[{"errorCode":"REQUIRED_FIELD_MISSING"}]`}
	r := e.Failure("job-1")
	if r.ID != "job-1" || r.Status != sfblocks.StatusFailed || r.ResultCode != 400 || r.Err != e {
		t.Fatalf("Failure = %+v", r)
	}
	back := r.AsError()
	if !errors.Is(back, e) || back.Message != e.Message || back.ResultBody != e.ResultBody || back.Retryable {
		t.Errorf("AsError = %+v, want the fields of %+v", back, e)
	}
	if (&sfblocks.Reply{Status: sfblocks.StatusOK}).AsError() != nil {
		t.Error("AsError of an ok reply is not nil")
	}
}
