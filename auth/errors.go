package auth

import (
	"context"
	"errors"
	"fmt"
)

// Stable error codes carried by [Error.Code]. Callers (the REST client, the
// worker's reply mapping, the CLI) branch on these, never on message text.
const (
	// CodeAuthFailed: Salesforce rejected the credentials (revoked or
	// expired refresh token, wrong consumer key/secret, refused grant).
	// Final: retrying cannot help until an operator acts.
	CodeAuthFailed = "AUTH_FAILED"
	// CodeNotAuthorized: a web_server account has no refresh token yet.
	// Final: run `sfblocks authorize --account NAME`.
	CodeNotAuthorized = "NOT_AUTHORIZED"
	// CodeAuthRetrying: Salesforce, or something between it and this
	// worker, refused the credentials in a way that may heal by itself
	// (client credentials not allowed yet while an app's policy
	// propagates, a 403 from a proxy). Transient: the fleet tries again
	// with a backoff of minutes; `sfblocks accounts reset NAME` tries at
	// once.
	CodeAuthRetrying = "AUTH_RETRYING"
	// CodeUnavailable: the token endpoint or the shared store could not be
	// reached, answered 5xx, or kept answering "token request is already
	// being processed". Transient: try again later.
	CodeUnavailable = "AUTH_UNAVAILABLE"
	// CodeUnknownAccount: no account of that name is configured. Final.
	CodeUnknownAccount = "UNKNOWN_ACCOUNT"
	// CodeInvalidConfig: the account configuration is invalid. Final.
	CodeInvalidConfig = "INVALID_CONFIG"
	// CodeNoTokenKey: no encryption key is configured for tokens at rest.
	CodeNoTokenKey = "NO_TOKEN_KEY"
	// CodeTokenKey: a stored token could not be decrypted (wrong key or
	// tampered value). Final until the worker is given the fleet's key.
	CodeTokenKey = "TOKEN_KEY_MISMATCH"
	// CodeStateMismatch: the authorization callback's state does not match
	// the one this Authorizer generated (stale or forged redirect). Final.
	CodeStateMismatch = "STATE_MISMATCH"
	// CodeAuthorizeDenied: the authorization callback carried an error
	// (the admin denied access, or the app is misconfigured). Final.
	CodeAuthorizeDenied = "AUTHORIZE_DENIED"
)

// Error is the error type of this package. Its message never contains a
// secret: token endpoint answers are reduced to Salesforce's error code and
// description before they are wrapped.
type Error struct {
	// Code is one of the Code* constants.
	Code string
	// Account is the integration account concerned, "" when none.
	Account string
	// Message says what happened and what to do next.
	Message string
	// Err is the underlying cause, if any (never carries a secret).
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	s := "auth"
	if e.Account != "" {
		s += fmt.Sprintf(": account %q", e.Account)
	}
	s += ": " + e.Code
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error with the same Code, so that
// errors.Is(err, auth.ErrAuthFailed) matches any AUTH_FAILED error.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// ErrorCode returns Code. Packages that must not import auth (blocks)
// recognise auth failures in an error chain by this method.
func (e *Error) ErrorCode() string { return e.Code }

// Transient reports whether retrying later may succeed.
func (e *Error) Transient() bool { return e.Code == CodeUnavailable || e.Code == CodeAuthRetrying }

// Sentinels for errors.Is; they match by code.
var (
	ErrAuthFailed      = &Error{Code: CodeAuthFailed}
	ErrAuthRetrying    = &Error{Code: CodeAuthRetrying}
	ErrNotAuthorized   = &Error{Code: CodeNotAuthorized}
	ErrUnavailable     = &Error{Code: CodeUnavailable}
	ErrUnknownAccount  = &Error{Code: CodeUnknownAccount}
	ErrInvalidConfig   = &Error{Code: CodeInvalidConfig}
	ErrNoTokenKey      = &Error{Code: CodeNoTokenKey}
	ErrTokenKey        = &Error{Code: CodeTokenKey}
	ErrStateMismatch   = &Error{Code: CodeStateMismatch}
	ErrAuthorizeDenied = &Error{Code: CodeAuthorizeDenied}
)

// IsTransient reports whether err (or an error it wraps) is an auth error
// that may succeed when retried later (AUTH_UNAVAILABLE, AUTH_RETRYING), or
// a context deadline. Every other auth error is final: retrying only
// repeats it.
func IsTransient(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.Transient()
	}
	return errors.Is(err, context.DeadlineExceeded)
}

// CodeOf returns the code of the first *Error in err's chain, or "".
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func newError(code, account, msg string, cause error) *Error {
	return &Error{Code: code, Account: account, Message: msg, Err: cause}
}
