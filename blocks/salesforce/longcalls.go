package salesforce

import (
	"bytes"
	"container/list"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// LongCallThreshold is how long a request runs before Salesforce counts it
// against the org's concurrent-request limit.
const LongCallThreshold = 20 * time.Second

// DefaultMaxLongCalls is the default of [LimitLongCalls]'s max: under the
// 25 long-running requests a production org runs at once, with room for
// the org's other integrations.
const DefaultMaxLongCalls = 20

// LimitLongCalls returns a copy of hc that keeps one account's requests
// under the org's concurrent-request limit: while max of them have been
// running for threshold (normally [LongCallThreshold]) or more, a new
// request is not sent but answered at once as Salesforce would answer it
// past the limit, 403 REQUEST_LIMIT_EXCEEDED "ConcurrentRequests
// (Concurrent API Requests) Limit exceeded.", the message saying that
// sfblocks held it back. Requests shorter than threshold are never
// limited, as Salesforce does not limit them. Put it outside the circuit
// breaker: a request held back is not Salesforce failing.
//
// The count is this process's: a fleet of n workers keeps n × max under
// the org's limit only if max is set so.
func LimitLongCalls(hc *http.Client, max int, threshold time.Duration) *http.Client {
	if max <= 0 {
		return hc
	}
	rt := hc.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	out := *hc
	out.Transport = &longCalls{next: rt, max: max, threshold: threshold, running: list.New()}
	return &out
}

type longCalls struct {
	next      http.RoundTripper
	max       int
	threshold time.Duration

	mu      sync.Mutex
	running *list.List // start times, oldest first
}

// RoundTrip implements http.RoundTripper.
func (l *longCalls) RoundTrip(req *http.Request) (*http.Response, error) {
	now := time.Now()
	l.mu.Lock()
	long := 0
	for e := l.running.Front(); e != nil && long < l.max; e = e.Next() {
		if now.Sub(e.Value.(time.Time)) < l.threshold {
			break // the rest are younger
		}
		long++
	}
	if long >= l.max {
		l.mu.Unlock()
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return heldBack(req, l.max, l.threshold), nil
	}
	e := l.running.PushBack(now)
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.running.Remove(e)
		l.mu.Unlock()
	}()
	// The call counts until its answer's headers are in; a body read
	// afterwards is quick, and Salesforce's clock stops there too.
	return l.next.RoundTrip(req)
}

// heldBack is the answer to a request the limiter did not send.
func heldBack(req *http.Request, max int, threshold time.Duration) *http.Response {
	body, _ := json.Marshal([]map[string]string{{
		"errorCode": CodeRequestLimit,
		"message": fmt.Sprintf("%s (Concurrent API Requests) Limit exceeded. (Held back by sfblocks, not sent: %d of this account's calls have run %v or more.)",
			concurrentLimitPrefix, max, threshold),
	}})
	return &http.Response{
		Status: "403 Forbidden", StatusCode: http.StatusForbidden,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"application/json;charset=UTF-8"}},
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}
}
