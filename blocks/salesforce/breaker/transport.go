package breaker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/sfblocks/sfblocks/blocks/salesforce"
)

// peekLimit bounds what is read of a 403 body to look for
// REQUEST_LIMIT_EXCEEDED; Salesforce's error arrays are far smaller.
const peekLimit = 16 << 10

// Transport returns a RoundTripper that sends requests through next (nil
// means http.DefaultTransport) while the breaker is closed or probing, and
// otherwise fails at once with an [*OpenError], closing the request body
// unsent. Each response or error is counted as described in the package
// documentation. A 403 body is read (up to 16 KiB) to find the errorCode and
// is handed on unchanged.
func (b *Breaker) Transport(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return &transport{b: b, next: next}
}

type transport struct {
	b    *Breaker
	next http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if ctx.Err() != nil {
		// The caller gave up before asking; next fails at once without the
		// network, and the breaker neither counts it nor spends a probe.
		return t.next.RoundTrip(req)
	}
	done, err := t.b.cb.Allow()
	if err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, t.b.refusal(err)
	}
	start := time.Now()
	res, err := t.next.RoundTrip(req)
	if err != nil {
		done(t.b.record(errOutcome(ctx, err, time.Since(start), t.b.set.s.SlowCall)))
		return nil, err
	}
	var outcome error
	res.Body, outcome = responseOutcome(res)
	done(t.b.record(outcome))
	return res, nil
}

// record remembers a failure's reason for the transition log line, then
// returns the outcome for gobreaker.
func (b *Breaker) record(outcome error) error {
	var f *failure
	if errors.As(outcome, &f) {
		b.lastFailure.Store(&f.reason)
	}
	return outcome
}

// errOutcome sorts a transport error: the caller's cancellation is not
// counted, and neither is the caller's deadline cutting a call short
// before slow (a deadline the job chose, not Salesforce failing); a call
// that waited at least slow, or any other error, is a failure.
func errOutcome(ctx context.Context, err error, waited, slow time.Duration) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return errExcluded
	}
	if ctx.Err() != nil {
		if waited < slow {
			return errExcluded
		}
		return &failure{reason: "timeout after " + waited.Round(time.Millisecond).String()}
	}
	// Transport errors (dial, reset, EOF) carry no URL and so no query
	// values; the client adds the URL later, in *url.Error.
	return &failure{reason: err.Error()}
}

// responseOutcome sorts an answer by its status and, for 403, its
// errorCode. It returns the body to hand on (a 403's is re-assembled from
// what was peeked) and nil for success or a *failure.
func responseOutcome(res *http.Response) (io.ReadCloser, error) {
	switch {
	case res.StatusCode >= 500, res.StatusCode == http.StatusTooManyRequests, res.StatusCode == http.StatusRequestTimeout:
		return res.Body, &failure{reason: "HTTP " + strconv.Itoa(res.StatusCode)}
	case res.StatusCode != http.StatusForbidden || res.Body == nil:
		return res.Body, nil
	}
	peeked, rerr := io.ReadAll(io.LimitReader(res.Body, peekLimit))
	rest := res.Body
	var r io.Reader = io.MultiReader(bytes.NewReader(peeked), rest)
	if rerr != nil {
		r = io.MultiReader(bytes.NewReader(peeked), errReader{rerr})
	}
	body := &peekedBody{Reader: r, Closer: rest}
	// The concurrent-request limit is not the org failing: its long calls
	// are busy, and a few seconds fix it; only the daily allocation counts.
	if code, msg := errorCode(peeked); code == salesforce.CodeRequestLimit && !salesforce.IsConcurrencyLimit(code, msg) {
		return body, &failure{reason: "HTTP 403 " + salesforce.CodeRequestLimit}
	}
	return body, nil
}

// errorCode returns the first errorCode and message of Salesforce's error
// array (or of a single error object), or "".
func errorCode(body []byte) (code, message string) {
	type wire struct {
		ErrorCode string `json:"errorCode"`
		Message   string `json:"message"`
	}
	var arr []wire
	if json.Unmarshal(body, &arr) == nil && len(arr) > 0 {
		return arr[0].ErrorCode, arr[0].Message
	}
	var one wire
	if json.Unmarshal(body, &one) == nil {
		return one.ErrorCode, one.Message
	}
	return "", ""
}

type peekedBody struct {
	io.Reader
	io.Closer
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
