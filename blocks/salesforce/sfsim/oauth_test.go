package sfsim

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim/simdb"
)

const testCallback = "http://127.0.0.1:9999/callback"

// authorizeCode runs the authorize step and returns the code from the redirect.
func authorizeCode(t *testing.T, s *Server, verifier, scope string) string {
	t.Helper()
	q := url.Values{
		"response_type": {"code"},
		"client_id":     {DefaultClientID},
		"redirect_uri":  {testCallback},
		"state":         {"st-123"},
	}
	if verifier != "" {
		q.Set("code_challenge", oauth2.S256ChallengeFromVerifier(verifier))
		q.Set("code_challenge_method", "S256")
	}
	if scope != "" {
		q.Set("scope", scope)
	}
	resp := call(t, http.MethodGet, s.LoginURL()+"/services/oauth2/authorize?"+q.Encode(), "", nil)
	if resp.status != http.StatusFound {
		t.Fatalf("authorize status %d: %s", resp.status, resp.body)
	}
	loc, err := url.Parse(resp.header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if got := loc.Query().Get("state"); got != "st-123" {
		t.Fatalf("state = %q, want st-123", got)
	}
	if loc.Scheme+"://"+loc.Host+loc.Path != testCallback {
		t.Fatalf("redirected to %s, want %s", loc, testCallback)
	}
	code := loc.Query().Get("code")
	if code == "" {
		t.Fatalf("no code in %s", loc)
	}
	return code
}

// tokenPost posts a form to the token endpoint on base.
func tokenPost(t *testing.T, base string, form url.Values) (response, map[string]any) {
	t.Helper()
	resp := call(t, http.MethodPost, base+"/services/oauth2/token", "", form)
	var body map[string]any
	resp.json(t, &body)
	return resp, body
}

func wantOAuthError(t *testing.T, resp response, body map[string]any, code, desc string) {
	t.Helper()
	if resp.status != http.StatusBadRequest || body["error"] != code || body["error_description"] != desc {
		t.Fatalf("got %d %v, want 400 %s %q", resp.status, body, code, desc)
	}
}

func TestAuthCodePKCEWithOAuth2Library(t *testing.T) {
	s := startSim(t, Options{})
	cfg := oauth2.Config{
		ClientID:     DefaultClientID,
		ClientSecret: DefaultClientSecret,
		RedirectURL:  testCallback,
		Scopes:       []string{"api", "refresh_token"},
		Endpoint: oauth2.Endpoint{
			AuthURL:  s.LoginURL() + "/services/oauth2/authorize",
			TokenURL: s.LoginURL() + "/services/oauth2/token",
		},
	}
	verifier := oauth2.GenerateVerifier()
	resp := call(t, http.MethodGet, cfg.AuthCodeURL("st-123", oauth2.S256ChallengeOption(verifier)), "", nil)
	loc, _ := url.Parse(resp.header.Get("Location"))
	code := loc.Query().Get("code")
	if resp.status != http.StatusFound || code == "" || loc.Query().Get("state") != "st-123" {
		t.Fatalf("authorize: %d %s", resp.status, resp.header.Get("Location"))
	}
	tok, err := cfg.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if tok.RefreshToken == "" || !tok.Expiry.IsZero() {
		t.Fatalf("token: refresh=%q expiry=%v; want refresh token and no expiry", tok.RefreshToken, tok.Expiry)
	}
	if !strings.HasPrefix(tok.AccessToken, OrgID[:15]+"!AQ") {
		t.Errorf("access token %q does not look like a Salesforce session id", tok.AccessToken[:20])
	}
	if got := tok.Extra("instance_url"); got != s.InstanceURL() {
		t.Errorf("instance_url = %v, want %s", got, s.InstanceURL())
	}
	id, _ := tok.Extra("id").(string)
	issued, _ := tok.Extra("issued_at").(string)
	mac := hmac.New(sha256.New, []byte(DefaultClientSecret))
	mac.Write([]byte(id + issued))
	if want := base64.StdEncoding.EncodeToString(mac.Sum(nil)); tok.Extra("signature") != want {
		t.Errorf("signature = %v, want %s", tok.Extra("signature"), want)
	}
	if !strings.HasPrefix(id, "https://login.salesforce.com/id/00D") {
		t.Errorf("id = %q", id)
	}
	// The token works on the data API.
	if r := call(t, http.MethodGet, dataURL(s, "limits"), tok.AccessToken, nil); r.status != http.StatusOK {
		t.Fatalf("limits with fresh token: %d %s", r.status, r.body)
	}
	if got := s.Stats().TokenGrants["authorization_code"]; got != 1 {
		t.Errorf("authorization_code grants = %d, want 1", got)
	}
}

func TestAuthCodeErrors(t *testing.T) {
	verifier := oauth2.GenerateVerifier()
	tests := []struct {
		name     string
		verifier string // used at authorize; "" means no PKCE
		form     func(code string) url.Values
		wantErr  string
		wantDesc string
	}{
		{
			name: "pkce mismatch", verifier: verifier,
			form:    func(code string) url.Values { return codeForm(code, oauth2.GenerateVerifier()) },
			wantErr: "invalid_grant", wantDesc: "invalid code verifier",
		},
		{
			name: "missing verifier", verifier: verifier,
			form:    func(code string) url.Values { return codeForm(code, "") },
			wantErr: "invalid_grant", wantDesc: "invalid code verifier",
		},
		{
			name: "redirect mismatch", verifier: verifier,
			form: func(code string) url.Values {
				f := codeForm(code, verifier)
				f.Set("redirect_uri", "http://127.0.0.1:9999/other")
				return f
			},
			wantErr: "invalid_grant", wantDesc: "redirect_uri must match configuration",
		},
		{
			name: "bad secret", verifier: verifier,
			form: func(code string) url.Values {
				f := codeForm(code, verifier)
				f.Set("client_secret", "nope")
				return f
			},
			wantErr: "invalid_client", wantDesc: "invalid client credentials",
		},
		{
			name: "bad client id", verifier: verifier,
			form: func(code string) url.Values {
				f := codeForm(code, verifier)
				f.Set("client_id", "nope")
				return f
			},
			wantErr: "invalid_client_id", wantDesc: "client identifier invalid",
		},
		{
			name:    "unknown code",
			form:    func(string) url.Values { return codeForm("aPrxbogus", "") },
			wantErr: "invalid_grant", wantDesc: "invalid authorization code",
		},
		{
			name: "unsupported grant",
			form: func(code string) url.Values {
				f := codeForm(code, verifier)
				f.Set("grant_type", "password")
				return f
			},
			wantErr: "unsupported_grant_type", wantDesc: "grant type not supported",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startSim(t, Options{})
			code := authorizeCode(t, s, tt.verifier, "")
			resp, body := tokenPost(t, s.LoginURL(), tt.form(code))
			wantOAuthError(t, resp, body, tt.wantErr, tt.wantDesc)
			if _, ok := body["access_token"]; ok {
				t.Error("error answer carries an access token")
			}
		})
	}
}

func codeForm(code, verifier string) url.Values {
	f := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {testCallback},
		"client_id":     {DefaultClientID},
		"client_secret": {DefaultClientSecret},
	}
	if verifier != "" {
		f.Set("code_verifier", verifier)
	}
	return f
}

func TestAuthCodeSingleUseAndExpiry(t *testing.T) {
	clock := newFakeClock()
	s := startSim(t, Options{Now: clock.Now})
	verifier := oauth2.GenerateVerifier()
	code := authorizeCode(t, s, verifier, "")
	if resp, body := tokenPost(t, s.LoginURL(), codeForm(code, verifier)); resp.status != http.StatusOK {
		t.Fatalf("first exchange: %d %v", resp.status, body)
	}
	resp, body := tokenPost(t, s.LoginURL(), codeForm(code, verifier))
	wantOAuthError(t, resp, body, "invalid_grant", "invalid authorization code")

	code = authorizeCode(t, s, verifier, "")
	clock.Advance(authCodeLifetime + time.Second)
	resp, body = tokenPost(t, s.LoginURL(), codeForm(code, verifier))
	wantOAuthError(t, resp, body, "invalid_grant", "expired authorization code")
}

func TestAuthorizeErrors(t *testing.T) {
	s := startSim(t, Options{CallbackURLs: []string{testCallback}})
	base := s.LoginURL() + "/services/oauth2/authorize?"
	tests := []struct {
		name       string
		q          url.Values
		wantStatus int
		wantInBody string
		wantQuery  string // error= in the redirect
	}{
		{
			name:       "unknown client",
			q:          url.Values{"response_type": {"code"}, "client_id": {"x"}, "redirect_uri": {testCallback}},
			wantStatus: http.StatusBadRequest, wantInBody: "invalid_client_id",
		},
		{
			name:       "unregistered callback",
			q:          url.Values{"response_type": {"code"}, "client_id": {DefaultClientID}, "redirect_uri": {"http://127.0.0.1:1/cb"}},
			wantStatus: http.StatusBadRequest, wantInBody: "redirect_uri_mismatch",
		},
		{
			name:       "bad response type",
			q:          url.Values{"response_type": {"token2"}, "client_id": {DefaultClientID}, "redirect_uri": {testCallback}},
			wantStatus: http.StatusFound, wantQuery: "unsupported_response_type",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := call(t, http.MethodGet, base+tt.q.Encode(), "", nil)
			if resp.status != tt.wantStatus {
				t.Fatalf("status %d, want %d", resp.status, tt.wantStatus)
			}
			if tt.wantInBody != "" && !strings.Contains(string(resp.body), tt.wantInBody) {
				t.Errorf("body %q lacks %q", resp.body, tt.wantInBody)
			}
			if tt.wantQuery != "" {
				loc, _ := url.Parse(resp.header.Get("Location"))
				if loc.Query().Get("error") != tt.wantQuery {
					t.Errorf("redirect %s, want error=%s", loc, tt.wantQuery)
				}
			}
		})
	}
}

// exchange runs the whole code flow and returns access and refresh tokens.
func exchange(t *testing.T, s *Server) (access, refresh string) {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	code := authorizeCode(t, s, verifier, "api refresh_token")
	resp, body := tokenPost(t, s.LoginURL(), codeForm(code, verifier))
	if resp.status != http.StatusOK {
		t.Fatalf("exchange: %d %v", resp.status, body)
	}
	access, _ = body["access_token"].(string)
	refresh, _ = body["refresh_token"].(string)
	if access == "" || refresh == "" {
		t.Fatalf("exchange answer lacks tokens: keys %v", keys(body))
	}
	return access, refresh
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func refreshForm(rt string) url.Values {
	return url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {rt},
		"client_id": {DefaultClientID}, "client_secret": {DefaultClientSecret},
	}
}

func TestRefreshWithoutRotation(t *testing.T) {
	s := startSim(t, Options{})
	_, rt := exchange(t, s)
	for i := 0; i < 2; i++ {
		resp, body := tokenPost(t, s.LoginURL(), refreshForm(rt))
		if resp.status != http.StatusOK {
			t.Fatalf("refresh %d: %d %v", i, resp.status, body)
		}
		if _, ok := body["refresh_token"]; ok {
			t.Fatalf("refresh without rotation returned a refresh token")
		}
		if _, ok := body["expires_in"]; ok {
			t.Fatalf("token answer carries expires_in")
		}
	}
	resp, body := tokenPost(t, s.LoginURL(), refreshForm("5Aep861unknown"))
	wantOAuthError(t, resp, body, "invalid_grant", "expired access/refresh token")
}

func TestRefreshRotationAndFamilyRevocation(t *testing.T) {
	s := startSim(t, Options{RotateRefreshTokens: true})
	access0, rt0 := exchange(t, s)
	resp, body := tokenPost(t, s.LoginURL(), refreshForm(rt0))
	if resp.status != http.StatusOK {
		t.Fatalf("refresh: %d %v", resp.status, body)
	}
	rt1, _ := body["refresh_token"].(string)
	access1, _ := body["access_token"].(string)
	if rt1 == "" || rt1 == rt0 {
		t.Fatalf("rotation gave refresh token %q", rt1)
	}
	// Reusing the rotated-out token revokes the whole family.
	resp, body = tokenPost(t, s.LoginURL(), refreshForm(rt0))
	wantOAuthError(t, resp, body, "invalid_grant", "expired access/refresh token")
	resp, body = tokenPost(t, s.LoginURL(), refreshForm(rt1))
	wantOAuthError(t, resp, body, "invalid_grant", "expired access/refresh token")
	for _, tok := range []string{access0, access1} {
		if r := call(t, http.MethodGet, dataURL(s, "limits"), tok, nil); r.status != http.StatusUnauthorized {
			t.Errorf("access token of revoked family: status %d, want 401", r.status)
		}
	}
	if got := s.Stats().FamiliesRevoked; got != 1 {
		t.Errorf("FamiliesRevoked = %d, want 1", got)
	}
}

// waitFor polls cond until it holds; the condition is internal state the
// test cannot otherwise await.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestTokenLatencyHoldsConcurrentRefresh(t *testing.T) {
	// The documented way to reproduce "already being processed": TokenLatency.
	s := startSim(t, Options{RotateRefreshTokens: true})
	_, rt := exchange(t, s)
	// Held for up to a minute; SetTokenLatency(0) below releases it.
	s.SetTokenLatency(time.Minute)
	var wg sync.WaitGroup
	results := make([]response, 2)
	wg.Add(1)
	go func() {
		defer wg.Done()
		results[0] = call(t, http.MethodPost, s.LoginURL()+"/services/oauth2/token", "", refreshForm(rt))
	}()
	waitFor(t, func() bool { return s.refreshInFlight(rt) })
	results[1] = call(t, http.MethodPost, s.LoginURL()+"/services/oauth2/token", "", refreshForm(rt))
	// The second answers at once; release the first.
	s.SetTokenLatency(0)
	wg.Wait()
	if results[1].status != http.StatusBadRequest || !strings.Contains(string(results[1].body), "already being processed") {
		t.Fatalf("second refresh: %d %s", results[1].status, results[1].body)
	}
	if results[0].status != http.StatusOK {
		t.Fatalf("first refresh: %d %s", results[0].status, results[0].body)
	}
}

func TestClientCredentials(t *testing.T) {
	s := startSim(t, Options{})
	t.Run("my domain via x/oauth2", func(t *testing.T) {
		cfg := clientcredentials.Config{
			ClientID: DefaultClientID, ClientSecret: DefaultClientSecret,
			TokenURL: s.MyDomainURL() + "/services/oauth2/token",
		}
		tok, err := cfg.Token(context.Background())
		if err != nil {
			t.Fatalf("Token: %v", err)
		}
		if tok.RefreshToken != "" || tok.Extra("instance_url") != s.InstanceURL() {
			t.Fatalf("refresh=%q instance_url=%v", tok.RefreshToken, tok.Extra("instance_url"))
		}
		if r := call(t, http.MethodGet, dataURL(s, "limits"), tok.AccessToken, nil); r.status != http.StatusOK {
			t.Fatalf("limits: %d", r.status)
		}
	})
	t.Run("login host refused", func(t *testing.T) {
		resp, body := tokenPost(t, s.LoginURL(), url.Values{
			"grant_type": {"client_credentials"}, "client_id": {DefaultClientID}, "client_secret": {DefaultClientSecret},
		})
		wantOAuthError(t, resp, body, "invalid_grant", "request not supported on this domain")
	})
	t.Run("basic auth wrong secret", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, s.MyDomainURL()+"/services/oauth2/token",
			strings.NewReader("grant_type=client_credentials"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(DefaultClientID, "wrong")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("status %d, want 400", resp.StatusCode)
		}
	})
	st := s.Stats()
	if st.TokenGrants["client_credentials"] != 1 || st.TokenRequests != 3 {
		t.Errorf("stats: grants %v requests %d", st.TokenGrants, st.TokenRequests)
	}
}

func TestRevokeAndIntrospect(t *testing.T) {
	s := startSim(t, Options{})
	access, rt := exchange(t, s)
	introspect := func(tok string) map[string]any {
		t.Helper()
		resp := call(t, http.MethodPost, s.LoginURL()+"/services/oauth2/introspect", "", url.Values{
			"token": {tok}, "client_id": {DefaultClientID}, "client_secret": {DefaultClientSecret},
		})
		var body map[string]any
		resp.json(t, &body)
		return body
	}
	got := introspect(access)
	for _, k := range []string{"active", "scope", "client_id", "username", "sub", "token_type", "exp", "iat", "nbf"} {
		if _, ok := got[k]; !ok {
			t.Errorf("introspect lacks %q: %v", k, got)
		}
	}
	if got["active"] != true || got["token_type"] != "access_token" {
		t.Errorf("introspect access = %v", got)
	}
	if got := introspect(rt); got["active"] != true || got["token_type"] != "refresh_token" {
		t.Errorf("introspect refresh = %v", got)
	}

	resp := call(t, http.MethodPost, s.LoginURL()+"/services/oauth2/revoke", "", url.Values{"token": {rt}})
	if resp.status != http.StatusOK {
		t.Fatalf("revoke: %d %s", resp.status, resp.body)
	}
	if r := call(t, http.MethodGet, dataURL(s, "limits"), access, nil); r.status != http.StatusUnauthorized {
		t.Errorf("access token after revoking its refresh token: %d", r.status)
	}
	if got := introspect(access); got["active"] != false || len(got) != 1 {
		t.Errorf("introspect revoked = %v, want only active:false", got)
	}
	r2, body := tokenPost(t, s.LoginURL(), refreshForm(rt))
	wantOAuthError(t, r2, body, "invalid_grant", "expired access/refresh token")
	resp = call(t, http.MethodPost, s.LoginURL()+"/services/oauth2/revoke", "", url.Values{"token": {"nope"}})
	if resp.status != http.StatusBadRequest {
		t.Errorf("revoke unknown: %d", resp.status)
	}
}

func TestSessionExpiry(t *testing.T) {
	clock := newFakeClock()
	s := startSim(t, Options{Now: clock.Now, SessionTimeout: time.Hour})
	access, rt := exchange(t, s)
	if r := call(t, http.MethodGet, dataURL(s, "limits"), access, nil); r.status != http.StatusOK {
		t.Fatalf("fresh: %d", r.status)
	}
	clock.Advance(time.Hour)
	r := call(t, http.MethodGet, dataURL(s, "limits"), access, nil)
	if r.status != http.StatusUnauthorized || r.errorCode(t) != "INVALID_SESSION_ID" {
		t.Fatalf("expired: %d %s", r.status, r.body)
	}
	// The refresh token still works and yields a working session.
	resp, body := tokenPost(t, s.LoginURL(), refreshForm(rt))
	if resp.status != http.StatusOK {
		t.Fatalf("refresh: %d %v", resp.status, body)
	}
	access2, _ := body["access_token"].(string)
	if r := call(t, http.MethodGet, dataURL(s, "limits"), access2, nil); r.status != http.StatusOK {
		t.Fatalf("refreshed: %d", r.status)
	}
	s.ExpireAllSessions()
	if r := call(t, http.MethodGet, dataURL(s, "limits"), access2, nil); r.status != http.StatusUnauthorized {
		t.Fatalf("after ExpireAllSessions: %d", r.status)
	}
	// A session minted afterwards is unaffected.
	if r := call(t, http.MethodGet, dataURL(s, "limits"), s.IssueToken("").AccessToken, nil); r.status != http.StatusOK {
		t.Fatalf("new session: %d", r.status)
	}
}

func TestUnauthorizedShapes(t *testing.T) {
	s := startSim(t, Options{})
	tests := []struct{ name, auth string }{
		{"missing", ""},
		{"unknown bearer", "Bearer 00Dxx!AQbogus"},
		{"basic scheme", "Basic abc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, dataURL(s, "limits"), nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d", resp.StatusCode)
			}
		})
	}
	// The older "OAuth" scheme is accepted.
	tok := s.IssueToken("").AccessToken
	if r := call(t, http.MethodGet, dataURL(s, "limits"), "", nil, "Authorization", "OAuth "+tok); r.status != http.StatusOK {
		t.Fatalf("OAuth scheme: %d", r.status)
	}
}

// refreshInFlight reports whether a refresh with rt is being processed.
func (s *Server) refreshInFlight(rt string) bool {
	s.tokens.mu.Lock()
	defer s.tokens.mu.Unlock()
	r, ok := s.tokens.refresh[rt]
	return ok && r.inFlight
}

// TestHandlerWithHTTPTest uses Handler under httptest: the login host is the
// 127.0.0.1 URL and the same port via "localhost" is My Domain.
func TestHandlerWithHTTPTest(t *testing.T) {
	s, err := New(Options{DB: simdb.New()})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	u, _ := url.Parse(ts.URL)
	myDomain := "http://localhost:" + u.Port()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {DefaultClientID}, "client_secret": {DefaultClientSecret}}

	resp, body := tokenPost(t, ts.URL, form)
	wantOAuthError(t, resp, body, "invalid_grant", "request not supported on this domain")
	resp, body = tokenPost(t, myDomain, form)
	if resp.status != http.StatusOK || body["instance_url"] != myDomain {
		t.Fatalf("my domain: %d %v", resp.status, body["instance_url"])
	}
	if s.LoginURL() != "" || s.InstanceURL() != "" {
		t.Errorf("URLs of a server not started: %q %q", s.LoginURL(), s.InstanceURL())
	}
	tok, _ := body["access_token"].(string)
	if r := call(t, http.MethodGet, myDomain+"/services/data/v66.0/limits", tok, nil); r.status != http.StatusOK {
		t.Fatalf("limits: %d", r.status)
	}
}

func TestMyDomainHostOption(t *testing.T) {
	s := startSim(t, Options{MyDomainHost: "sim"})
	if !strings.HasPrefix(s.MyDomainURL(), "http://sim:") {
		t.Fatalf("MyDomainURL = %q", s.MyDomainURL())
	}
	// Reach the listener by address while naming the My Domain host, as a
	// container on the compose network does.
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {DefaultClientID}, "client_secret": {DefaultClientSecret}}
	post := func(host string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, s.LoginURL()+"/services/oauth2/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, body
	}
	status, body := post(strings.TrimPrefix(s.MyDomainURL(), "http://"))
	if status != http.StatusOK || body["instance_url"] != s.MyDomainURL() {
		t.Fatalf("on the My Domain host: %d %v", status, body)
	}
	status, body = post("localhost")
	if status != http.StatusBadRequest || body["error_description"] != "request not supported on this domain" {
		t.Fatalf("on another host: %d %v", status, body)
	}
}

func TestOrgAndUserIDsCarryTheirChecksum(t *testing.T) {
	if want := sfID("00D", "000000001"); OrgID != want {
		t.Errorf("OrgID = %s, want %s", OrgID, want)
	}
	if want := "005Hs0000000001" + idChecksum("005Hs0000000001"); UserID != want {
		t.Errorf("UserID = %s, want %s", UserID, want)
	}
}
