package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// contentSecurityPolicy allows the console's own scripts, styles and
// images only: no inline script or style, no frame, no form posting
// elsewhere.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// maxFormBytes bounds a POST body: an edited payload (1 MiB, the workers'
// largest job) and the form around it.
const maxFormBytes = 2 << 20

// secure sets the security headers on every answer, answers only the
// allowed hosts and bounds request bodies.
func (c *Console) secure(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", contentSecurityPolicy)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		hd.Set("Cross-Origin-Resource-Policy", "same-origin")
		hd.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
		if r.TLS != nil {
			hd.Set("Strict-Transport-Security", "max-age=31536000")
		}
		if strings.HasPrefix(r.URL.Path, "/static/") {
			hd.Set("Cache-Control", "private, max-age=300")
		} else {
			hd.Set("Cache-Control", "no-store")
		}
		if len(c.cfg.AllowedHosts) > 0 {
			host := r.Host
			if h, _, err := net.SplitHostPort(host); err == nil {
				host = h
			}
			host = strings.Trim(host, "[]")
			if !slices.Contains(c.cfg.AllowedHosts, strings.ToLower(host)) {
				http.Error(w, "this console answers only "+strings.Join(c.cfg.AllowedHosts, ", ")+"; open it by one of those names", http.StatusMisdirectedRequest)
				return
			}
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		}
		h.ServeHTTP(w, r)
	})
}

// session is one login.
type session struct {
	id      string
	csrf    string
	expires time.Time
}

// sessions are the logins, in memory: a restart logs everyone out, and a
// logout ends the session for good.
type sessions struct {
	ttl time.Duration
	now func() time.Time
	mu  sync.Mutex
	m   map[string]*session
}

func newSessions(ttl time.Duration, now func() time.Time) *sessions {
	return &sessions{ttl: ttl, now: now, m: map[string]*session{}}
}

// randomToken returns 32 random bytes, base64url.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *sessions) open() *session {
	ss := &session{id: randomToken(), csrf: randomToken(), expires: s.now().Add(s.ttl)}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for id, old := range s.m {
		if now.After(old.expires) {
			delete(s.m, id)
		}
	}
	s.m[ss.id] = ss
	return ss
}

func (s *sessions) get(id string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.m[id]
	if ss == nil {
		return nil
	}
	if s.now().After(ss.expires) {
		delete(s.m, id)
		return nil
	}
	return ss
}

func (s *sessions) close(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
}

type sessionKey struct{}

// sessionOf returns the request's session; nil before login.
func sessionOf(r *http.Request) *session {
	s, _ := r.Context().Value(sessionKey{}).(*session)
	return s
}

func (c *Console) cookieName() string {
	if c.cfg.SecureCookie {
		return "__Host-sfblocks-console"
	}
	return "sfblocks-console"
}

// session requires a session: a GET without one goes to /login (and back
// after), anything else is refused. A POST must carry the session's CSRF
// token, in the form's "csrf" field or the X-CSRF-Token header.
func (c *Console) session(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var s *session
		if ck, err := r.Cookie(c.cookieName()); err == nil {
			s = c.sessions.get(ck.Value)
		}
		if s == nil {
			switch {
			case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/progress"):
				http.Error(w, `{"error":"log in again"}`, http.StatusUnauthorized)
			case r.Method == http.MethodGet:
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			default:
				c.fail(w, r, http.StatusForbidden, "Your session has ended (or the console restarted): log in again, then repeat the action.")
			}
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), sessionKey{}, s))
		if r.Method == http.MethodPost {
			given := r.Header.Get("X-CSRF-Token")
			if given == "" {
				given = r.PostFormValue("csrf")
			}
			if subtle.ConstantTimeCompare([]byte(given), []byte(s.csrf)) != 1 {
				c.cfg.Logger.Warn().Str("path", r.URL.Path).Msg("console: refused a POST without the session's CSRF token")
				c.fail(w, r, http.StatusForbidden, "Refused: this request did not carry the page's CSRF token. Reload the page and use its buttons.")
				return
			}
		}
		h(w, r)
	})
}

// loginPage is the data of login.html.
type loginPage struct {
	Next  string
	Error string
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "login", "Log in", "", loginPage{Next: localPath(r.URL.Query().Get("next"))})
}

// login exchanges the operator token for a session. A wrong token is
// answered slowly once failures pile up (ten, then one a second); a right
// one is always accepted.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	next := localPath(r.PostFormValue("next"))
	given := sha256.Sum256([]byte(r.PostFormValue("token")))
	want := sha256.Sum256([]byte(c.cfg.Token))
	if subtle.ConstantTimeCompare(given[:], want[:]) != 1 {
		status := http.StatusUnauthorized
		msg := "That is not the console's operator token (SFBLOCKS_CONSOLE_TOKEN or SFBLOCKS_CONSOLE_TOKEN_FILE of the console's process)."
		if !c.logins.Allow() {
			status = http.StatusTooManyRequests
			msg = "Too many failed logins: wait a few seconds, then try again."
		}
		c.cfg.Logger.Warn().Str("remote", r.RemoteAddr).Msg("console: failed login")
		c.render(w, r, status, "login", "Log in", "", loginPage{Next: next, Error: msg})
		return
	}
	s := c.sessions.open()
	http.SetCookie(w, &http.Cookie{Name: c.cookieName(), Value: s.id, Path: "/", HttpOnly: true, Secure: c.cfg.SecureCookie,
		SameSite: http.SameSiteStrictMode, MaxAge: int(c.cfg.SessionTTL / time.Second)})
	c.cfg.Logger.Info().Str("remote", r.RemoteAddr).Msg("console: operator logged in")
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	c.sessions.close(sessionOf(r).id)
	http.SetCookie(w, &http.Cookie{Name: c.cookieName(), Value: "", Path: "/", HttpOnly: true, Secure: c.cfg.SecureCookie,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// localPath keeps a redirect target on the console: a path, never
// another host ("//evil", "/\evil", "https://...").
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\\r\n") || strings.HasPrefix(p, "/login") {
		return "/"
	}
	return p
}
