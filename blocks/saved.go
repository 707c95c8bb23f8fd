package blocks

import (
	"errors"
	"net"
	"syscall"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks/salesforce"
)

// ErrMaybeSaved is in the cause chain ([sfblocks.Reply.Err]) of a failed
// Insert that creates (no external_id) and failed in a way that may
// nevertheless have saved its record, so that running it again could
// create a second one. Test for it with [MayHaveSaved].
var ErrMaybeSaved = errors.New("blocks: the insert failed, but Salesforce may have created its record")

// MayHaveSaved reports whether the failed reply r, as returned by
// [Executor.Run] or [Executor.Handle] in this process, is that of an Insert
// without external_id that may have created its record although it failed.
// It is false for successes, searches, upserts (repeating one updates the
// same record) and failures that prove nothing was saved; a reply decoded
// from JSON has no cause and is never reported.
func MayHaveSaved(r *sfblocks.Reply) bool {
	return r != nil && r.Status == sfblocks.StatusFailed && errors.Is(r.Err, ErrMaybeSaved)
}

// maybeSaved marks a failure as [ErrMaybeSaved] while keeping its cause.
type maybeSaved struct{ err error }

func (m *maybeSaved) Error() string        { return m.err.Error() }
func (m *maybeSaved) Unwrap() error        { return m.err }
func (m *maybeSaved) Is(target error) bool { return target == ErrMaybeSaved }

// mayHaveCommitted reports whether a failed create may nevertheless have
// created its record. It is false only when the failure proves nothing was
// saved:
//
//   - Salesforce answered with its own error (result_code set and a
//     Salesforce errorCode): a REST create is all or nothing, and an error
//     answer means nothing was saved (UNABLE_TO_LOCK_ROW, 503
//     SERVER_UNAVAILABLE, REQUEST_LIMIT_EXCEEDED, 401 ...);
//   - the request never left: an open circuit breaker, a failure to get a
//     token, a refused connection (a failed dial), a name that does not
//     resolve, an invalid job.
//
// Everything else may have reached Salesforce: TIMEOUT (the deadline passed
// while waiting for the answer), a connection dropped or reset after the
// request was written, an HTTP error without Salesforce's error body (a
// proxy's 502/504), an INTERNAL failure.
func mayHaveCommitted(e *sfblocks.Error) bool {
	if e.Code == sfblocks.CodeInvalidRequest || e.Code == sfblocks.CodeUnknownAccount {
		return false
	}
	if e.ResultCode != 0 && e.SalesforceCode != "" && e.SalesforceCode != salesforce.CodeHTTPError {
		return false
	}
	if e.ResultCode >= 400 && e.ResultCode < 500 {
		return false // an answer refusing the request, even a proxy's
	}
	err := e.Err
	if err == nil {
		return true
	}
	var open interface{ BreakerOpen() bool }
	if errors.As(err, &open) && open.BreakerOpen() {
		return false
	}
	var tokErr *salesforce.TokenError
	if errors.As(err, &tokErr) {
		return false
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return false
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return false
	}
	var dnsErr *net.DNSError
	return !errors.As(err, &dnsErr)
}
