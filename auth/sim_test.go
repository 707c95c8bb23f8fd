package auth

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
	"github.com/sfblocks/sfblocks/worker/workertest"
	"golang.org/x/oauth2"
)

func simAccount(sim *sfsim.Server, name string, flow Flow, loginURL string) *Account {
	return &Account{Name: name, LoginURL: loginURL, ClientID: sfsim.DefaultClientID, ClientSecret: Secret(sfsim.DefaultClientSecret),
		Flow: flow, APIVersion: "66.0", Scopes: DefaultScopes(), RedirectURL: "http://127.0.0.1:1717/oauth/callback", Default: true}
}

// seedAuthorized stores a refresh token (and its first access token) as a
// completed `sfblocks authorize` would.
func seedAuthorized(t *testing.T, sim *sfsim.Server, store Store, account string) sfsim.IssuedToken {
	t.Helper()
	it := sim.IssueToken("api refresh_token")
	if _, err := store.Put(ctxT(t), account, &Record{AccessToken: Secret(it.AccessToken), RefreshToken: Secret(it.RefreshToken), InstanceURL: it.InstanceURL, IssuedAt: it.IssuedAt}); err != nil {
		t.Fatal(err)
	}
	return it
}

// callLimits is a data call as the REST client makes it: on 401 it
// invalidates the failed token, gets a fresh one and retries once.
func callLimits(ctx context.Context, ts *TokenSource) error {
	for attempt := 0; ; attempt++ {
		tok, err := ts.Token(ctx)
		if err != nil {
			return err
		}
		inst, _ := tok.Extra("instance_url").(string)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, inst+"/services/data/v66.0/limits", nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusOK:
			return nil
		case resp.StatusCode == http.StatusUnauthorized && attempt == 0 && strings.Contains(string(body), "INVALID_SESSION_ID"):
			ts.Invalidate(tok)
		default:
			return fmt.Errorf("limits: %d %s", resp.StatusCode, body)
		}
	}
}

func TestSimExactlyOneTokenRequestAcrossProcesses(t *testing.T) {
	t.Parallel()
	for _, rotate := range []bool{false, true} {
		t.Run(fmt.Sprintf("rotation=%v", rotate), func(t *testing.T) {
			t.Parallel()
			sim := workertest.StartSim(t, sfsim.Options{RotateRefreshTokens: rotate, TokenLatency: 20 * time.Millisecond})
			ns := workertest.StartNATS(t)
			c := testCipher(t)
			a := simAccount(sim, "prod", FlowWebServer, sim.LoginURL())
			var sources []*TokenSource
			for i := range 4 {
				_, js := workertest.JetStream(t, ns)
				store := newKVStore(t, js, c, 5*time.Second)
				if i == 0 {
					seedAuthorized(t, sim, store, "prod")
				}
				_, ts := newTestCache(t, a, CacheOptions{Store: store})
				sources = append(sources, ts)
			}
			ctx := ctxT(t)
			for round := range 3 {
				// Warm every process (no token request: the stored token is used).
				for _, ts := range sources {
					if err := callLimits(ctx, ts); err != nil {
						t.Fatal(err)
					}
				}
				before := sim.Stats()
				sim.ExpireAllSessions()
				var wg sync.WaitGroup
				for i := range 200 {
					wg.Go(func() {
						if err := callLimits(ctx, sources[i%4]); err != nil {
							t.Error(err)
						}
					})
				}
				wg.Wait()
				after := sim.Stats()
				if d := after.TokenRequests - before.TokenRequests; d != 1 {
					t.Fatalf("round %d: token requests across the expiry = %d, want exactly 1 (errors %v)", round, d, after.TokenErrors)
				}
				if d := after.TokenGrants["refresh_token"] - before.TokenGrants["refresh_token"]; d != 1 {
					t.Fatalf("round %d: refresh grants = %d", round, d)
				}
				if after.FamiliesRevoked != 0 {
					t.Fatal("a rotated-out refresh token was reused")
				}
			}
		})
	}
}

func TestSimRevokedRefreshTokenFailsOnce(t *testing.T) {
	t.Parallel()
	sim := workertest.StartSim(t, sfsim.Options{})
	ns := workertest.StartNATS(t)
	c := testCipher(t)
	a := simAccount(sim, "prod", FlowWebServer, sim.LoginURL())
	_, js1 := workertest.JetStream(t, ns)
	_, js2 := workertest.JetStream(t, ns)
	s1, s2 := newKVStore(t, js1, c, 5*time.Second), newKVStore(t, js2, c, 5*time.Second)
	it := seedAuthorized(t, sim, s1, "prod")
	_, ts1 := newTestCache(t, a, CacheOptions{Store: s1})
	_, ts2 := newTestCache(t, a, CacheOptions{Store: s2})
	ctx := ctxT(t)

	resp, err := http.PostForm(sim.LoginURL()+"/services/oauth2/revoke", url.Values{"token": {it.RefreshToken}})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("revoke: %v %v", resp, err)
	}
	resp.Body.Close()
	before := sim.Stats().TokenRequests
	for i, ts := range []*TokenSource{ts1, ts1, ts2, ts2} {
		err := callLimits(ctx, ts)
		if CodeOf(err) != CodeAuthFailed || IsTransient(err) || !strings.Contains(err.Error(), "sfblocks authorize --account prod") {
			t.Fatalf("call %d: err = %v, want final AUTH_FAILED telling to authorize", i, err)
		}
	}
	if d := sim.Stats().TokenRequests - before; d != 1 {
		t.Fatalf("token requests = %d, want 1 (no retry loop, not even in another process)", d)
	}
}

func TestSimClientCredentials(t *testing.T) {
	t.Parallel()
	sim := workertest.StartSim(t, sfsim.Options{})
	tests := []struct {
		name     string
		loginURL string
		wantCode string
		wantMsg  string
	}{
		{"my domain", sim.MyDomainURL(), "", ""},
		{"login host refused", sim.LoginURL(), CodeAuthFailed, "My Domain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ts := newTestCache(t, simAccount(sim, "cc", FlowClientCredentials, tt.loginURL), CacheOptions{})
			err := callLimits(ctxT(t), ts)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if CodeOf(err) != tt.wantCode || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("err = %v", err)
			}
		})
	}
	if n := sim.Stats().TokenGrants["client_credentials"]; n != 1 {
		t.Fatalf("client_credentials grants = %d", n)
	}
}

// authorizeVia opens the authorization URL as the admin's browser would,
// stopping at the redirect back; it returns the redirect URL.
func authorizeVia(t *testing.T, z *Authorizer) string {
	t.Helper()
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get(z.AuthCodeURL())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || loc == "" {
		t.Fatalf("authorize answered %d", resp.StatusCode)
	}
	return loc
}

func TestSimAuthorize(t *testing.T) {
	t.Parallel()
	sim := workertest.StartSim(t, sfsim.Options{})
	a := simAccount(sim, "prod", FlowWebServer, sim.LoginURL())
	tests := []struct {
		name     string
		tamper   func(z *Authorizer, redirect string) string
		wantCode string
		wantMsg  string
	}{
		{"pasted redirect", func(_ *Authorizer, r string) string { return r }, "", ""},
		{"state mismatch", func(_ *Authorizer, r string) string { return strings.Replace(r, "state=", "state=x", 1) }, CodeStateMismatch, "state"},
		{"pkce verifier mismatch", func(z *Authorizer, r string) string { z.verifier = Secret(oauth2.GenerateVerifier()); return r }, CodeAuthFailed, "PKCE"},
		{"pkce verifier missing", func(z *Authorizer, r string) string { z.verifier = ""; return r }, CodeAuthFailed, "PKCE"},
		{"denied", func(_ *Authorizer, r string) string {
			return r + "&error=access_denied&error_description=end-user+denied+authorization"
		}, CodeAuthorizeDenied, "access_denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			store := NewMemoryStore()
			z, err := NewAuthorizer(a, AuthorizerOptions{Store: store})
			if err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(z.AuthCodeURL())
			if q := u.Query(); q.Get("code_challenge_method") != "S256" || q.Get("scope") != "api refresh_token offline_access" || q.Get("state") == "" {
				t.Fatalf("auth URL lacks PKCE/scope/state: %s", u.RawQuery)
			}
			res, err := z.ExchangeRedirectURL(ctxT(t), tt.tamper(z, authorizeVia(t, z)))
			rec, _, _ := store.Load(ctxT(t), "prod")
			if tt.wantCode == "" {
				if err != nil || res.InstanceURL == "" || rec == nil || rec.RefreshToken.IsZero() {
					t.Fatalf("res = %+v, rec = %v, err = %v", res, rec, err)
				}
				return
			}
			if CodeOf(err) != tt.wantCode || !strings.Contains(err.Error(), tt.wantMsg) || rec != nil {
				t.Fatalf("err = %v, rec = %v; want %s mentioning %q and nothing stored", err, rec, tt.wantCode, tt.wantMsg)
			}
		})
	}
}

func TestSimAuthorizeServeCallbackThenRefresh(t *testing.T) {
	t.Parallel()
	sim := workertest.StartSim(t, sfsim.Options{})
	ln := workertest.Listen(t)
	a := simAccount(sim, "prod", FlowWebServer, sim.LoginURL())
	a.RedirectURL = "http://" + ln.Addr().String() + "/oauth/callback"
	store := NewMemoryStore()
	z, err := NewAuthorizer(a, AuthorizerOptions{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	type out struct {
		res *Result
		err error
	}
	done := make(chan out, 1)
	go func() { r, err := z.ServeCallback(ctx, ln); done <- out{r, err} }()
	// A stray callback with a wrong state does not end the flow.
	if resp, err := http.Get(a.RedirectURL + "?code=x&state=wrong"); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("stray callback: %v %v", resp, err)
	}
	resp, err := http.Get(z.AuthCodeURL()) // follows the redirect to our listener
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	o := <-done
	if o.err != nil || resp.StatusCode != 200 {
		t.Fatalf("callback: %d %v", resp.StatusCode, o.err)
	}
	// The stored refresh token now serves the cache.
	_, ts := newTestCache(t, a, CacheOptions{Store: store})
	sim.ExpireAllSessions()
	if err := callLimits(ctx, ts); err != nil {
		t.Fatal(err)
	}
	if n := sim.Stats().TokenGrants["refresh_token"]; n != 1 {
		t.Fatalf("refresh grants = %d", n)
	}
}

// TestAuthorizerListen: a redirect URL on port 0 is bound on a port the
// system picks, and the URL handed out and used in the exchange carries
// that port; a real port is bound as given, and the URL is left as it is.
func TestAuthorizerListen(t *testing.T) {
	t.Parallel()
	sim := workertest.StartSim(t, sfsim.Options{})
	taken := workertest.Listen(t).Addr().String()
	tests := []struct {
		name     string
		redirect string
		wantCode string
	}{
		{name: "port 0 on an address", redirect: "http://127.0.0.1:0/oauth/callback"},
		{name: "port 0 on localhost", redirect: "http://localhost:0/cb?x=1"},
		{name: "real port in use", redirect: "http://" + taken + "/oauth/callback", wantCode: CodeInvalidConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := simAccount(sim, "prod", FlowWebServer, sim.LoginURL())
			a.RedirectURL = tt.redirect
			store := NewMemoryStore()
			z, err := NewAuthorizer(a, AuthorizerOptions{Store: store})
			if err != nil {
				t.Fatal(err)
			}
			ln, err := z.Listen()
			if tt.wantCode != "" {
				if CodeOf(err) != tt.wantCode || !strings.Contains(err.Error(), taken) || z.RedirectURL() != tt.redirect {
					t.Fatalf("Listen = %v, redirect %s; want %s naming %s and the URL unchanged", err, z.RedirectURL(), tt.wantCode, taken)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			want, _ := url.Parse(tt.redirect)
			_, port, _ := net.SplitHostPort(ln.Addr().String())
			want.Host = net.JoinHostPort(want.Hostname(), port)
			if port == "0" || z.RedirectURL() != want.String() {
				t.Fatalf("RedirectURL = %s, want %s (the port bound)", z.RedirectURL(), want)
			}
			if u, _ := url.Parse(z.AuthCodeURL()); u.Query().Get("redirect_uri") != want.String() {
				t.Fatalf("AuthCodeURL redirect_uri = %s, want %s", u.Query().Get("redirect_uri"), want)
			}
			// The browser follows the simulator's redirect to the bound
			// port, and the exchange (same redirect_uri) succeeds.
			ctx := ctxT(t)
			type out struct {
				res *Result
				err error
			}
			done := make(chan out, 1)
			go func() { r, err := z.ServeCallback(ctx, ln); done <- out{r, err} }()
			resp, err := http.Get(z.AuthCodeURL())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			o := <-done
			if o.err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("callback: %d %v", resp.StatusCode, o.err)
			}
			if rec, _, _ := store.Load(ctx, "prod"); rec == nil || rec.RefreshToken.IsZero() {
				t.Fatalf("no refresh token stored: %+v", rec)
			}
		})
	}
}
