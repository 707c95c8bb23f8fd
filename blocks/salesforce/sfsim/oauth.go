package sfsim

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// authCodeLifetime is how long an authorization code can be exchanged;
// Salesforce documents 15 minutes.
const authCodeLifetime = 15 * time.Minute

// appScopes are the OAuth scopes the simulated External Client App grants
// when a request names none.
const appScopes = "api refresh_token"

// oauthError is the token endpoint's error body.
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// OAuth errors as Salesforce words them.
var (
	errInvalidClientID  = oauthError{"invalid_client_id", "client identifier invalid"}
	errInvalidClient    = oauthError{"invalid_client", "invalid client credentials"}
	errUnsupportedGrant = oauthError{"unsupported_grant_type", "grant type not supported"}
	errExpiredToken     = oauthError{"invalid_grant", "expired access/refresh token"}
	errInvalidCode      = oauthError{"invalid_grant", "invalid authorization code"}
	errExpiredCode      = oauthError{"invalid_grant", "expired authorization code"}
	errRedirectMismatch = oauthError{"invalid_grant", "redirect_uri must match configuration"}
	errCodeVerifier     = oauthError{"invalid_grant", "invalid code verifier"}
	errInFlight         = oauthError{"invalid_grant", "token request is already being processed"}
	errWrongDomain      = oauthError{"invalid_grant", "request not supported on this domain"}
	errInvalidToken     = oauthError{"invalid_token", "invalid token"}
)

// tokenResponse is the token endpoint's success body. Salesforce sends no
// expires_in: clients learn of expiry from a 401.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Signature    string `json:"signature"`
	Scope        string `json:"scope"`
	InstanceURL  string `json:"instance_url"`
	ID           string `json:"id"`
	TokenType    string `json:"token_type"`
	IssuedAt     string `json:"issued_at"`
}

func (s *Server) serveOAuth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-cache,must-revalidate,max-age=0,no-store,private")
	endpoint := strings.TrimPrefix(r.URL.Path, "/services/oauth2/")
	if r.Method == http.MethodPost && endpoint == "token" {
		// Counted before faults so injected failures show as requests too.
		s.stats.add(func(st *Stats) { st.TokenRequests++ })
	}
	if s.applyFaults(w, r, true) {
		return
	}
	switch endpoint {
	case "authorize":
		if allow(w, r, http.MethodGet, http.MethodPost) {
			s.authorize(w, r)
		}
	case "token":
		if allow(w, r, http.MethodPost) {
			s.token(w, r)
		}
	case "revoke":
		if allow(w, r, http.MethodGet, http.MethodPost) {
			s.revoke(w, r)
		}
	case "introspect":
		if allow(w, r, http.MethodPost) {
			s.introspect(w, r)
		}
	default:
		writeErrors(w, http.StatusNotFound, apiError{Code: "NOT_FOUND", Message: msgNotFound})
	}
}

// callbackAllowed reports whether redirectURI is registered. With no
// registered URLs any http loopback URL is accepted (a test convenience).
func (s *Server) callbackAllowed(redirectURI string) bool {
	if len(s.opts.CallbackURLs) > 0 {
		for _, u := range s.opts.CallbackURLs {
			if u == redirectURI {
				return true
			}
		}
		return false
	}
	u, err := url.Parse(redirectURI)
	if err != nil || u.Scheme != "http" {
		return false
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// authorizeErrorPage is the page Salesforce shows when it cannot redirect
// back (unknown client or unregistered callback).
func authorizeErrorPage(w http.ResponseWriter, e oauthError) {
	w.Header().Set("Content-Type", "text/html;charset=UTF-8")
	w.WriteHeader(http.StatusBadRequest)
	fmt.Fprintf(w, "<html><head><title>OAuth Error</title></head><body><p>error=%s&amp;error_description=%s</p></body></html>",
		html.EscapeString(e.Error), html.EscapeString(url.QueryEscape(e.Description)))
}

// authorize auto-approves as the pre-authorized admin user and redirects back
// with a code. Errors that make the callback untrustworthy are shown as a
// page; the others are sent to the callback as error=...&error_description=....
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	s.stats.add(func(st *Stats) { st.AuthorizeRequests++ })
	if err := r.ParseForm(); err != nil {
		authorizeErrorPage(w, oauthError{"invalid_request", "malformed request"})
		return
	}
	q := r.Form
	if q.Get("client_id") != s.opts.ClientID {
		authorizeErrorPage(w, errInvalidClientID)
		return
	}
	redirectURI := q.Get("redirect_uri")
	if !s.callbackAllowed(redirectURI) {
		authorizeErrorPage(w, oauthError{"redirect_uri_mismatch", "redirect_uri must match configuration"})
		return
	}
	back, _ := url.Parse(redirectURI)
	params := back.Query()
	if st := q.Get("state"); st != "" {
		params.Set("state", st)
	}
	fail := func(e oauthError) {
		params.Set("error", e.Error)
		params.Set("error_description", e.Description)
		back.RawQuery = params.Encode()
		http.Redirect(w, r, back.String(), http.StatusFound)
	}
	if q.Get("response_type") != "code" {
		fail(oauthError{"unsupported_response_type", "response type not supported"})
		return
	}
	challenge := q.Get("code_challenge")
	if challenge != "" {
		if m := q.Get("code_challenge_method"); m != "" && m != "S256" {
			fail(oauthError{"invalid_request", "invalid code_challenge_method"})
			return
		}
	}
	scope := q.Get("scope")
	if scope == "" {
		scope = appScopes
	}
	code := &authCode{
		code:        newAuthCode(),
		clientID:    s.opts.ClientID,
		redirectURI: redirectURI,
		challenge:   challenge,
		scope:       scope,
		expiresAt:   s.opts.Now().Add(authCodeLifetime),
	}
	s.tokens.mu.Lock()
	s.tokens.codes[code.code] = code
	s.tokens.mu.Unlock()
	params.Set("code", code.code)
	back.RawQuery = params.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

// clientCredentials reads client authentication from HTTP Basic or the form.
func clientCredentials(r *http.Request) (id, secret string, hasSecret bool) {
	if u, p, ok := r.BasicAuth(); ok {
		id, _ = url.QueryUnescape(u)
		secret, _ = url.QueryUnescape(p)
		return id, secret, true
	}
	_, hasSecret = r.PostForm["client_secret"]
	return r.PostForm.Get("client_id"), r.PostForm.Get("client_secret"), hasSecret
}

func (s *Server) tokenError(w http.ResponseWriter, status int, e oauthError) {
	s.stats.add(func(st *Stats) { st.TokenErrors[e.Error]++ })
	writeJSON(w, status, e)
}

func (s *Server) secretOK(secret string) bool {
	return subtle.ConstantTimeCompare([]byte(secret), []byte(s.opts.ClientSecret)) == 1
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.tokenError(w, http.StatusBadRequest, oauthError{"invalid_request", "malformed request"})
		return
	}
	grant := r.PostForm.Get("grant_type")
	switch grant {
	case "authorization_code", "refresh_token", "client_credentials":
	default:
		s.tokenError(w, http.StatusBadRequest, errUnsupportedGrant)
		return
	}
	id, secret, hasSecret := clientCredentials(r)
	if id != s.opts.ClientID {
		s.tokenError(w, http.StatusBadRequest, errInvalidClientID)
		return
	}
	// A public client (PKCE, no secret) may omit the secret on the code and
	// refresh grants; a secret that is sent must be right.
	if hasSecret || grant == "client_credentials" {
		if !s.secretOK(secret) {
			s.tokenError(w, http.StatusBadRequest, errInvalidClient)
			return
		}
	}
	switch grant {
	case "authorization_code":
		s.grantAuthCode(w, r, hasSecret)
	case "refresh_token":
		s.grantRefresh(w, r)
	case "client_credentials":
		s.grantClientCredentials(w, r)
	}
}

// wait holds a grant for the token latency; it reports false if the client
// left. A change of latency ([Server.SetTokenLatency]) releases held grants.
func (s *Server) wait(r *http.Request) bool {
	s.latMu.Lock()
	d, changed := s.tokenLatency, s.latencyChanged
	s.latMu.Unlock()
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-changed:
		return true
	case <-r.Context().Done():
		return false
	}
}

// SetTokenLatency changes [Options.TokenLatency] while the server runs.
// Grants being held by the old latency are released at once, so a test can
// hold a refresh in flight and then let it finish without waiting.
func (s *Server) SetTokenLatency(d time.Duration) {
	s.latMu.Lock()
	defer s.latMu.Unlock()
	s.tokenLatency = d
	close(s.latencyChanged)
	s.latencyChanged = make(chan struct{})
}

func (s *Server) answerGrant(w http.ResponseWriter, r *http.Request, grant string, sess *session, rt *refreshToken) {
	issued := millis(sess.issuedAt)
	resp := tokenResponse{
		AccessToken: sess.token,
		Signature:   signature(s.opts.ClientSecret, idURL(), issued),
		Scope:       sess.scope,
		InstanceURL: s.instanceURLFor(r),
		ID:          idURL(),
		TokenType:   "Bearer",
		IssuedAt:    issued,
	}
	if rt != nil {
		resp.RefreshToken = rt.token
	}
	s.stats.add(func(st *Stats) { st.TokenGrants[grant]++ })
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) grantAuthCode(w http.ResponseWriter, r *http.Request, hasSecret bool) {
	f := r.PostForm
	now := s.opts.Now()
	ts := s.tokens
	ts.mu.Lock()
	code, ok := ts.codes[f.Get("code")]
	var fail *oauthError
	switch {
	case !ok || code.used || code.clientID != s.opts.ClientID:
		fail = &errInvalidCode
	case !now.Before(code.expiresAt):
		fail = &errExpiredCode
	case f.Get("redirect_uri") != code.redirectURI:
		fail = &errRedirectMismatch
	case code.challenge == "" && !hasSecret:
		// Without PKCE the secret is the only proof of the client.
		fail = &errInvalidClient
	case code.challenge != "" && !pkceMatches(code.challenge, f.Get("code_verifier")):
		fail = &errCodeVerifier
	}
	if ok {
		// Codes are single-use: any attempt burns them.
		code.used = true
	}
	if fail != nil {
		ts.mu.Unlock()
		s.tokenError(w, http.StatusBadRequest, *fail)
		return
	}
	var rt *refreshToken
	if hasScope(code.scope, "refresh_token") || hasScope(code.scope, "offline_access") {
		rt = s.mintRefreshLocked(&family{}, code.clientID, code.scope, now)
	}
	sess := s.mintSessionLocked(code.clientID, code.scope, rt, now)
	ts.mu.Unlock()
	if !s.wait(r) {
		return
	}
	s.answerGrant(w, r, "authorization_code", sess, rt)
}

// pkceMatches checks an S256 code_verifier against the stored challenge.
func pkceMatches(challenge, verifier string) bool {
	if verifier == "" {
		return false
	}
	sum := sha256.Sum256([]byte(verifier))
	got := base64.RawURLEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(got), []byte(strings.TrimRight(challenge, "="))) == 1
}

func (s *Server) grantRefresh(w http.ResponseWriter, r *http.Request) {
	now := s.opts.Now()
	ts := s.tokens
	ts.mu.Lock()
	rt, ok := ts.refresh[r.PostForm.Get("refresh_token")]
	switch {
	case !ok || rt.clientID != s.opts.ClientID || rt.revoked || rt.fam.revoked:
		ts.mu.Unlock()
		s.tokenError(w, http.StatusBadRequest, errExpiredToken)
		return
	case rt.rotated:
		// Reuse of a rotated-out token means it leaked: revoke the family.
		rt.fam.revoked = true
		ts.mu.Unlock()
		s.stats.add(func(st *Stats) { st.FamiliesRevoked++ })
		s.tokenError(w, http.StatusBadRequest, errExpiredToken)
		return
	case rt.inFlight:
		ts.mu.Unlock()
		s.tokenError(w, http.StatusBadRequest, errInFlight)
		return
	}
	rotate := s.opts.RotateRefreshTokens
	if rotate {
		rt.inFlight = true
	}
	ts.mu.Unlock()

	// The latency sits between accepting and answering, so a second refresh
	// with the same token arriving meanwhile sees it in flight.
	alive := s.wait(r)

	ts.mu.Lock()
	if rotate {
		rt.inFlight = false
	}
	if !alive || rt.revoked || rt.fam.revoked {
		ts.mu.Unlock()
		if alive {
			s.tokenError(w, http.StatusBadRequest, errExpiredToken)
		}
		return
	}
	var next *refreshToken
	parent := rt
	if rotate {
		rt.rotated = true
		next = s.mintRefreshLocked(rt.fam, rt.clientID, rt.scope, now)
		parent = next
	}
	sess := s.mintSessionLocked(rt.clientID, rt.scope, parent, now)
	ts.mu.Unlock()
	s.answerGrant(w, r, "refresh_token", sess, next)
}

func (s *Server) grantClientCredentials(w http.ResponseWriter, r *http.Request) {
	if !s.isMyDomainHost(r) {
		s.tokenError(w, http.StatusBadRequest, errWrongDomain)
		return
	}
	now := s.opts.Now()
	if status, e, refused := s.faults.clientCredentialsRefusal(now); refused {
		s.stats.add(func(st *Stats) { st.FaultsInjected["refuseClientCredentials"]++ })
		s.tokenError(w, status, e)
		return
	}
	scope := r.PostForm.Get("scope")
	if scope == "" {
		scope = "api"
	}
	s.tokens.mu.Lock()
	sess := s.mintSessionLocked(s.opts.ClientID, scope, nil, now)
	s.tokens.mu.Unlock()
	if !s.wait(r) {
		return
	}
	s.answerGrant(w, r, "client_credentials", sess, nil)
}

// revoke revokes an access token, or a refresh token together with every
// access token minted from it. An unknown token gets 400 invalid_token, one
// of the two errors Salesforce documents for revocation.
func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, errInvalidToken)
		return
	}
	tok := r.Form.Get("token")
	ts := s.tokens
	ts.mu.Lock()
	found := false
	if sess, ok := ts.sessions[tok]; ok {
		sess.revoked, found = true, true
	}
	if rt, ok := ts.refresh[tok]; ok {
		rt.revoked, found = true, true
		for _, sess := range ts.sessions {
			if sess.refresh == rt {
				sess.revoked = true
			}
		}
	}
	ts.mu.Unlock()
	if !found {
		writeJSON(w, http.StatusBadRequest, errInvalidToken)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// introspectResponse is RFC 7662's answer as Salesforce fills it.
type introspectResponse struct {
	Active    bool   `json:"active"`
	Scope     string `json:"scope,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	Username  string `json:"username,omitempty"`
	Sub       string `json:"sub,omitempty"`
	TokenType string `json:"token_type,omitempty"`
	Exp       int64  `json:"exp,omitempty"`
	Iat       int64  `json:"iat,omitempty"`
	Nbf       int64  `json:"nbf,omitempty"`
}

func (s *Server) introspect(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.tokenError(w, http.StatusBadRequest, oauthError{"invalid_request", "malformed request"})
		return
	}
	id, secret, _ := clientCredentials(r)
	if id != s.opts.ClientID {
		writeJSON(w, http.StatusBadRequest, errInvalidClientID)
		return
	}
	if !s.secretOK(secret) {
		writeJSON(w, http.StatusBadRequest, errInvalidClient)
		return
	}
	tok := r.PostForm.Get("token")
	now := s.opts.Now()
	ts := s.tokens
	ts.mu.Lock()
	resp := introspectResponse{}
	if sess, ok := ts.sessions[tok]; ok && sess.valid(now) {
		resp = introspectResponse{
			Active: true, Scope: sess.scope, ClientID: sess.clientID, Username: s.opts.Username,
			Sub: idURL(), TokenType: "access_token",
			Exp: sess.expiresAt.Unix(), Iat: sess.issuedAt.Unix(), Nbf: sess.issuedAt.Unix(),
		}
	} else if rt, ok := ts.refresh[tok]; ok && !rt.revoked && !rt.rotated && !rt.fam.revoked {
		resp = introspectResponse{
			Active: true, Scope: rt.scope, ClientID: rt.clientID, Username: s.opts.Username,
			Sub: idURL(), TokenType: "refresh_token",
			Iat: rt.issuedAt.Unix(), Nbf: rt.issuedAt.Unix(),
		}
	}
	ts.mu.Unlock()
	writeJSON(w, http.StatusOK, resp)
}
