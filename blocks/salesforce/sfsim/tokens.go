package sfsim

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim/simdb"
)

// The simulated org and its one pre-authorized admin user (a test checks
// that both carry the right checksum suffix).
const (
	// OrgID is the simulated org's 18-character ID.
	OrgID = "00D000000000001EAA"
	// UserID is the 18-character ID of the admin user every token acts as:
	// the last segment of every token's identity URL ("id") and the
	// CreatedById, LastModifiedById and OwnerId of every record written
	// through the REST API, so a client can learn from its token whose
	// records it made. It is [simdb.UserID].
	UserID = simdb.UserID
)

// idURL is the identity URL token responses carry as "id":
// https://login.salesforce.com/id/<OrgID>/<UserID>, as Salesforce's
// identity URLs are.
func idURL() string { return "https://login.salesforce.com/id/" + OrgID + "/" + UserID }

// sfID builds an 18-character Salesforce ID: the 3-character key prefix, the
// rest padded with zeros to 15 characters, then the case-safe checksum.
func sfID(prefix, body string) string {
	id15 := prefix + strings.Repeat("0", 15-len(prefix)-len(body)) + body
	return id15 + idChecksum(id15)
}

// idChecksum is the 3-character case-safe suffix of a 15-character ID: one
// character per 5-character chunk, encoding which characters are upper case.
func idChecksum(id15 string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
	var out [3]byte
	for chunk := 0; chunk < 3; chunk++ {
		bits := 0
		for i := 0; i < 5; i++ {
			c := id15[chunk*5+i]
			if c >= 'A' && c <= 'Z' {
				bits |= 1 << i
			}
		}
		out[chunk] = alphabet[bits]
	}
	return string(out[:])
}

// tokenChars is the alphabet of the opaque part of Salesforce tokens.
const tokenChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._"

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = tokenChars[int(b[i])%len(tokenChars)]
	}
	return string(b)
}

// newAccessToken looks like a Salesforce session ID: the 15-character org ID,
// "!", then an opaque string starting "AQ".
func newAccessToken() string { return OrgID[:15] + "!AQ" + randomString(110) }

// newRefreshToken looks like a Salesforce refresh token ("5Aep861...").
func newRefreshToken() string { return "5Aep861" + randomString(80) }

// newAuthCode looks like a Salesforce authorization code ("aPrx...").
func newAuthCode() string { return "aPrx" + randomString(60) }

// signature is Base64(HMAC-SHA256(secret, id + issued_at)), as Salesforce signs
// token responses so clients can check they came from it.
func signature(secret, id, issuedAt string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(id + issuedAt))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// family is everything issued from one authorization: its refresh tokens
// (one live one under rotation) and the access tokens minted from them.
type family struct {
	revoked bool
}

type session struct {
	token     string
	fam       *family // nil for client credentials and IssueToken without refresh
	refresh   *refreshToken
	clientID  string
	scope     string
	issuedAt  time.Time
	expiresAt time.Time
	revoked   bool
}

type refreshToken struct {
	token    string
	fam      *family
	clientID string
	scope    string
	issuedAt time.Time
	revoked  bool
	rotated  bool // replaced under rotation; presenting it again is reuse
	inFlight bool // a refresh with it is being processed
}

type authCode struct {
	code        string
	clientID    string
	redirectURI string
	challenge   string
	scope       string
	expiresAt   time.Time
	used        bool
}

type tokenStore struct {
	mu       sync.Mutex
	sessions map[string]*session
	refresh  map[string]*refreshToken
	codes    map[string]*authCode
}

func newTokenStore() *tokenStore {
	return &tokenStore{
		sessions: map[string]*session{},
		refresh:  map[string]*refreshToken{},
		codes:    map[string]*authCode{},
	}
}

// valid reports whether an access token authorizes data calls now.
func (sess *session) valid(now time.Time) bool {
	if sess.revoked || !now.Before(sess.expiresAt) {
		return false
	}
	if sess.fam != nil && sess.fam.revoked {
		return false
	}
	if sess.refresh != nil && sess.refresh.revoked {
		return false
	}
	return true
}

// lookupSession returns the session for an access token if it is usable now.
func (s *Server) lookupSession(token string) (*session, bool) {
	ts := s.tokens
	ts.mu.Lock()
	defer ts.mu.Unlock()
	sess, ok := ts.sessions[token]
	if !ok || !sess.valid(s.opts.Now()) {
		return nil, false
	}
	return sess, true
}

// mintSessionLocked records a new access token. ts.mu must be held.
func (s *Server) mintSessionLocked(clientID, scope string, rt *refreshToken, now time.Time) *session {
	sess := &session{
		token:     newAccessToken(),
		refresh:   rt,
		clientID:  clientID,
		scope:     scope,
		issuedAt:  now,
		expiresAt: now.Add(s.opts.SessionTimeout),
	}
	if rt != nil {
		sess.fam = rt.fam
	}
	s.tokens.sessions[sess.token] = sess
	s.stats.add(func(st *Stats) { st.SessionsIssued++ })
	return sess
}

// mintRefreshLocked records a new refresh token in fam. ts.mu must be held.
func (s *Server) mintRefreshLocked(fam *family, clientID, scope string, now time.Time) *refreshToken {
	rt := &refreshToken{token: newRefreshToken(), fam: fam, clientID: clientID, scope: scope, issuedAt: now}
	s.tokens.refresh[rt.token] = rt
	return rt
}

// ExpireAllSessions makes every access token issued so far expired, as a
// session timeout or an admin's "expire all sessions" would. Refresh tokens
// stay valid, so clients recover by refreshing. POST /_sim/expire-sessions
// does the same.
func (s *Server) ExpireAllSessions() {
	now := s.opts.Now()
	s.tokens.mu.Lock()
	defer s.tokens.mu.Unlock()
	for _, sess := range s.tokens.sessions {
		if sess.expiresAt.After(now) {
			sess.expiresAt = now
		}
	}
}

// IssuedToken is what [Server.IssueToken] mints.
type IssuedToken struct {
	AccessToken  string
	RefreshToken string // empty unless the scope includes refresh_token
	InstanceURL  string // empty for a server built with New and not started
	IssuedAt     time.Time
}

// IssueToken mints an access token directly, without any OAuth exchange, for
// tests that are not about authentication. scope is space-separated and
// defaults to "api"; when it includes "refresh_token" a refresh token is minted
// too. It is a test-only convenience: real Salesforce has nothing like it.
func (s *Server) IssueToken(scope string) IssuedToken {
	if scope == "" {
		scope = "api"
	}
	now := s.opts.Now()
	s.tokens.mu.Lock()
	defer s.tokens.mu.Unlock()
	var rt *refreshToken
	if hasScope(scope, "refresh_token") || hasScope(scope, "offline_access") {
		rt = s.mintRefreshLocked(&family{}, s.opts.ClientID, scope, now)
	}
	sess := s.mintSessionLocked(s.opts.ClientID, scope, rt, now)
	out := IssuedToken{AccessToken: sess.token, InstanceURL: s.InstanceURL(), IssuedAt: now}
	if rt != nil {
		out.RefreshToken = rt.token
	}
	return out
}

func hasScope(scope, want string) bool {
	for _, f := range strings.Fields(scope) {
		if f == want || f == "full" && want != "refresh_token" && want != "offline_access" {
			return true
		}
	}
	return false
}

func millis(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }
