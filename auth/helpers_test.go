package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// fakeTokenEndpoint is a minimal Salesforce token endpoint for unit tests:
// it answers refresh_token and client_credentials grants without expires_in.
type fakeTokenEndpoint struct {
	srv      *httptest.Server
	requests atomic.Int64
	mu       sync.Mutex
	n        int
	rotate   bool
	refresh  string // currently valid refresh token
	secret   string
	// failures are answered, in order, before any success.
	failures []fakeFailure
	gate     chan struct{} // when non-nil, each request waits for a receive... (closed = open)
}

type fakeFailure struct {
	status int
	code   string
	desc   string
}

func newFakeTokenEndpoint(t *testing.T, refresh string, rotate bool) *fakeTokenEndpoint {
	t.Helper()
	f := &fakeTokenEndpoint{refresh: refresh, rotate: rotate, secret: "fake-consumer-secret-123"}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeTokenEndpoint) serve(w http.ResponseWriter, r *http.Request) {
	f.requests.Add(1)
	if r.URL.Path != "/services/oauth2/token" {
		http.NotFound(w, r)
		return
	}
	f.mu.Lock()
	gate := f.gate
	f.mu.Unlock()
	if gate != nil {
		<-gate
	}
	_ = r.ParseForm()
	f.mu.Lock()
	defer f.mu.Unlock()
	fail := func(status int, code, desc string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
	}
	if len(f.failures) > 0 {
		ff := f.failures[0]
		f.failures = f.failures[1:]
		fail(ff.status, ff.code, ff.desc)
		return
	}
	if r.PostForm.Get("client_secret") != f.secret {
		fail(400, "invalid_client", "invalid client credentials")
		return
	}
	resp := map[string]string{"instance_url": "https://acme.my.salesforce.com", "id": "https://login.salesforce.com/id/00D/005", "token_type": "Bearer", "scope": "api refresh_token"}
	switch r.PostForm.Get("grant_type") {
	case "refresh_token":
		if r.PostForm.Get("refresh_token") != f.refresh {
			fail(400, "invalid_grant", "expired access/refresh token")
			return
		}
		if f.rotate {
			f.refresh = fmt.Sprintf("fake-refresh-%d", f.n+1)
			resp["refresh_token"] = f.refresh
		}
	case "client_credentials":
	default:
		fail(400, "unsupported_grant_type", "grant type not supported")
		return
	}
	f.n++
	resp["access_token"] = fmt.Sprintf("fake-access-%d", f.n)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

func (f *fakeTokenEndpoint) account(name string, flow Flow) *Account {
	return &Account{Name: name, LoginURL: f.srv.URL, ClientID: "fake-client", ClientSecret: Secret(f.secret), Flow: flow,
		APIVersion: DefaultAPIVersion, Scopes: DefaultScopes(), RedirectURL: DefaultRedirectURL, Default: true}
}

func testCipher(t *testing.T) *Cipher {
	t.Helper()
	c, _, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newKVStore(t *testing.T, js jetstream.JetStream, c *Cipher, ttl time.Duration) *KVStore {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := NewKVStore(ctx, js, KVStoreConfig{Cipher: c, LeaseTTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// testClock is an injected clock that tests move instead of sleeping.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock {
	return &testClock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// skewed is the real clock off by d, as a worker's wrong wall clock is.
func skewed(d time.Duration) func() time.Time { return func() time.Time { return time.Now().Add(d) } }
