package auth

import (
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
)

// countingRT counts requests and either passes them on or fails them with err.
type countingRT struct {
	n   atomic.Int64
	err error
}

func (c *countingRT) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	if c.err != nil {
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, c.err
	}
	return http.DefaultTransport.RoundTrip(r)
}

// breakerOpenErr stands in for package breaker's *OpenError.
type breakerOpenErr struct{}

func (breakerOpenErr) Error() string     { return "breaker: circuit breaker for account \"a\" is open" }
func (breakerOpenErr) BreakerOpen() bool { return true }

func TestCacheHTTPClientFor(t *testing.T) {
	t.Parallel()
	f := newFakeTokenEndpoint(t, "rt", false)
	a, b := f.account("a", FlowClientCredentials), f.account("b", FlowClientCredentials)
	b.Default = false
	shared, forA := &countingRT{}, &countingRT{}
	c, err := NewCache(&Config{Accounts: []*Account{a, b}}, CacheOptions{
		HTTPClient: &http.Client{Transport: shared},
		HTTPClientFor: func(account string) *http.Client {
			if account == "a" {
				return &http.Client{Transport: forA}
			}
			return nil // falls back to HTTPClient
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b"} {
		ts, err := c.Source(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ts.Token(ctxT(t)); err != nil {
			t.Fatalf("account %s: %v", name, err)
		}
	}
	if forA.n.Load() != 1 || shared.n.Load() != 1 {
		t.Fatalf("requests: account a's client %d, shared client %d; want 1 and 1", forA.n.Load(), shared.n.Load())
	}
}

func TestCacheBreakerOpenNotRetried(t *testing.T) {
	t.Parallel()
	f := newFakeTokenEndpoint(t, "rt", false)
	refused := &countingRT{err: breakerOpenErr{}}
	_, ts := newTestCache(t, f.account("a", FlowClientCredentials), CacheOptions{
		HTTPClientFor: func(string) *http.Client { return &http.Client{Transport: refused} },
	})
	_, err := ts.Token(ctxT(t))
	if CodeOf(err) != CodeUnavailable || !errors.As(err, new(breakerOpenErr)) {
		t.Fatalf("err = %v; want AUTH_UNAVAILABLE wrapping the breaker's error", err)
	}
	if n := refused.n.Load(); n != 1 {
		t.Fatalf("attempts = %d; want 1 (no backoff loop against an open breaker)", n)
	}
	if f.requests.Load() != 0 {
		t.Fatal("the token endpoint was reached")
	}
}
