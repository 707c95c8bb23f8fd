package auth

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

func newTestCache(t *testing.T, a *Account, opts CacheOptions) (*Cache, *TokenSource) {
	t.Helper()
	if opts.RetryBackoff == 0 {
		opts.RetryBackoff = time.Millisecond
	}
	c, err := NewCache(&Config{Accounts: []*Account{a}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := c.Source("")
	if err != nil {
		t.Fatal(err)
	}
	return c, ts
}

func TestCacheOneRefreshForConcurrentCallers(t *testing.T) {
	t.Parallel()
	f := newFakeTokenEndpoint(t, "rt-0", false)
	a := f.account("prod", FlowWebServer)
	a.RefreshToken = "rt-0"
	_, ts := newTestCache(t, a, CacheOptions{})
	ctx := ctxT(t)

	var wg sync.WaitGroup
	toks := make([]*oauth2.Token, 50)
	for i := range toks {
		wg.Go(func() {
			tok, err := ts.Token(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			toks[i] = tok
		})
	}
	wg.Wait()
	if n := f.requests.Load(); n != 1 {
		t.Fatalf("token requests = %d, want 1", n)
	}
	if toks[0].Extra("instance_url") != "https://acme.my.salesforce.com" || !toks[0].Expiry.IsZero() {
		t.Fatalf("token = %+v", toks[0])
	}

	// Invalidate of the current token → exactly one new request; a late
	// Invalidate of the old token after that is a no-op.
	old := toks[0]
	for range 20 {
		wg.Go(func() {
			ts.Invalidate(old)
			if _, err := ts.Token(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := f.requests.Load(); n != 2 {
		t.Fatalf("token requests after invalidate = %d, want 2", n)
	}
	cur, _ := ts.Token(ctx)
	if cur.AccessToken == old.AccessToken {
		t.Fatal("invalidated token handed out again")
	}
	ts.Invalidate(old)
	again, _ := ts.Token(ctx)
	if again.AccessToken != cur.AccessToken || f.requests.Load() != 2 {
		t.Fatal("stale Invalidate discarded the newer token")
	}
}

func TestCacheTransientRetriedFinalNot(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		failures     []fakeFailure
		refresh      Secret
		secret       Secret
		wantCode     string
		wantRequests int64
		wantMsg      string
	}{
		{"already processing retried", []fakeFailure{{400, "invalid_grant", "token request is already being processed"}, {400, "invalid_grant", "token request is already being processed"}}, "rt", "", "", 3, ""},
		{"5xx retried", []fakeFailure{{503, "server_error", "down"}}, "rt", "", "", 2, ""},
		{"persistent processing gives up", []fakeFailure{{400, "invalid_grant", descAlreadyProcessing}, {400, "invalid_grant", descAlreadyProcessing}, {400, "invalid_grant", descAlreadyProcessing}, {400, "invalid_grant", descAlreadyProcessing}}, "rt", "", CodeUnavailable, 4, "in flight"},
		{"revoked refresh token", nil, "wrong-rt", "", CodeAuthFailed, 1, "sfblocks authorize --account prod"},
		{"authentication failure", []fakeFailure{{400, "invalid_grant", "authentication failure"}}, "rt", "", CodeAuthFailed, 1, "authorize"},
		{"bad secret", nil, "rt", "wrong-secret", CodeAuthFailed, 1, "consumer key/secret"},
		{"not authorized", nil, "", "", CodeNotAuthorized, 0, "sfblocks authorize --account prod"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeTokenEndpoint(t, "rt", false)
			f.failures = tt.failures
			a := f.account("prod", FlowWebServer)
			a.RefreshToken = tt.refresh
			if tt.secret != "" {
				a.ClientSecret = tt.secret
			}
			_, ts := newTestCache(t, a, CacheOptions{})
			ctx := ctxT(t)
			tok, err := ts.Token(ctx)
			if tt.wantCode == "" {
				if err != nil || tok == nil {
					t.Fatalf("err = %v", err)
				}
			} else {
				if CodeOf(err) != tt.wantCode || !strings.Contains(err.Error(), tt.wantMsg) {
					t.Fatalf("err = %v, want %s mentioning %q", err, tt.wantCode, tt.wantMsg)
				}
				if IsTransient(err) != (tt.wantCode == CodeUnavailable) {
					t.Fatalf("IsTransient wrong for %v", err)
				}
				// A final failure is not retried by later calls either.
				if tt.wantCode != CodeUnavailable {
					_, err2 := ts.Token(ctx)
					if CodeOf(err2) != tt.wantCode {
						t.Fatalf("second err = %v", err2)
					}
				}
			}
			if n := f.requests.Load(); n != tt.wantRequests {
				t.Fatalf("token requests = %d, want %d", n, tt.wantRequests)
			}
		})
	}
}

func TestCacheRotationStoredBeforeUse(t *testing.T) {
	t.Parallel()
	f := newFakeTokenEndpoint(t, "rt-0", true)
	a := f.account("prod", FlowWebServer)
	a.RefreshToken = "rt-0"
	store := NewMemoryStore()
	_, ts := newTestCache(t, a, CacheOptions{Store: store})
	ctx := ctxT(t)
	for i := 1; i <= 3; i++ {
		tok, err := ts.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		rec, _, _ := store.Load(ctx, "prod")
		if rec.AccessToken.Reveal() != tok.AccessToken || rec.RefreshToken.Reveal() != f.refresh {
			t.Fatalf("round %d: store has %v/%v, endpoint expects %s", i, rec.AccessToken.Reveal(), rec.RefreshToken.Reveal(), f.refresh)
		}
		ts.Invalidate(tok)
	}
	if n := f.requests.Load(); n != 3 {
		t.Fatalf("requests = %d", n)
	}
}

func TestCacheSessionTimeoutRefreshesAhead(t *testing.T) {
	t.Parallel()
	f := newFakeTokenEndpoint(t, "rt", false)
	a := f.account("prod", FlowWebServer)
	a.RefreshToken, a.SessionTimeout = "rt", time.Hour
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	_, ts := newTestCache(t, a, CacheOptions{Now: clock})
	ctx := ctxT(t)
	t1, err := ts.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !t1.Expiry.Equal(clock().Add(time.Hour)) {
		t.Fatalf("expiry = %v", t1.Expiry)
	}
	now.Add(int64(50 * time.Minute))
	if t2, _ := ts.Token(ctx); t2.AccessToken != t1.AccessToken {
		t.Fatal("refreshed too early")
	}
	now.Add(int64(5 * time.Minute)) // 55 min > 90% of 1h
	t3, _ := ts.Token(ctx)
	if t3.AccessToken == t1.AccessToken || f.requests.Load() != 2 {
		t.Fatalf("did not refresh ahead: requests = %d", f.requests.Load())
	}
}

func TestCacheClientCredentials(t *testing.T) {
	t.Parallel()
	f := newFakeTokenEndpoint(t, "", false)
	a := f.account("cc", FlowClientCredentials)
	_, ts := newTestCache(t, a, CacheOptions{})
	tok, err := ts.Token(ctxT(t))
	if err != nil || tok.AccessToken == "" {
		t.Fatalf("tok = %v, err = %v", tok, err)
	}
}

func TestCacheCallerContext(t *testing.T) {
	t.Parallel()
	f := newFakeTokenEndpoint(t, "rt", false)
	gate := make(chan struct{})
	f.gate = gate
	a := f.account("prod", FlowWebServer)
	a.RefreshToken = "rt"
	_, ts := newTestCache(t, a, CacheOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := ts.Token(ctx)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	close(gate) // the detached fetch still completes for later callers
	if _, err := ts.Token(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}

func TestUnknownAccount(t *testing.T) {
	t.Parallel()
	f := newFakeTokenEndpoint(t, "rt", false)
	c, _ := newTestCache(t, f.account("prod", FlowWebServer), CacheOptions{})
	if _, err := c.Source("nope"); !errors.Is(err, ErrUnknownAccount) {
		t.Fatalf("err = %v", err)
	}
}
