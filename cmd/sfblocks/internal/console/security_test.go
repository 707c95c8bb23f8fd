package console_test

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sfblocks/sfblocks/cmd/sfblocks/internal/console"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

func TestNewRefusesAShortTokenAndNoConnection(t *testing.T) {
	t.Parallel()
	nc := workertest.Connect(t, workertest.StartNATS(t))
	tests := []struct {
		name  string
		given console.Config
		want  string
	}{
		{"no connection", console.Config{Token: testToken}, "no NATS connection"},
		{"no token", console.Config{NATS: nc}, "openssl rand -base64 32"},
		{"short token", console.Config{NATS: nc, Token: "short"}, "fewer than 16"},
		{"bad trusted origin", console.Config{NATS: nc, Token: testToken, TrustedOrigins: []string{"not an origin"}}, "scheme://host"},
		{"bad prefix", console.Config{NATS: nc, Token: testToken, Prefix: "a b"}, "prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := console.New(tt.given)
			if err == nil {
				_ = c.Close()
				t.Fatal("accepted")
			}
			if !errors.Is(err, console.ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q: want ErrInvalidConfig saying %q", err, tt.want)
			}
		})
	}
}

// The session, the CSRF token, the cross-origin check and the headers.
func TestLoginSessionsAndForgery(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetOptions{noWorker: true, console: func(c *console.Config) { c.AllowedHosts = []string{"127.0.0.1"} }})

	// Before login: pages send to /login, and come back after it.
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/dlq?code=AUTH_FAILED", nil)
	if code, _, loc := f.do(t, req); code != http.StatusSeeOther || loc != "/login?next="+url.QueryEscape("/dlq?code=AUTH_FAILED") {
		t.Fatalf("GET /dlq before login: %d → %q", code, loc)
	}
	req, _ = http.NewRequest(http.MethodPost, f.srv.URL+"/dlq/action", strings.NewReader("op=purge&scope=filter&confirm=yes"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if code, body, _ := f.do(t, req); code != http.StatusForbidden || !strings.Contains(body, "log in again") {
		t.Fatalf("POST before login: %d\n%s", code, body)
	}
	res, err := http.Get(f.srv.URL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	for name, want := range map[string]string{
		"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'",
		"X-Frame-Options":         "DENY",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "no-store",
	} {
		if got := res.Header.Get(name); !strings.HasPrefix(got, want) {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	if csp := res.Header.Get("Content-Security-Policy"); strings.Contains(csp, "unsafe") {
		t.Errorf("CSP %q allows unsafe sources", csp)
	}

	// Wrong tokens, open redirects; a client without the session's jar.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	tests := []struct {
		name     string
		form     url.Values
		wantCode int
		wantLoc  string
	}{
		{"wrong token", url.Values{"token": {"not-the-token-0123456789"}}, http.StatusUnauthorized, ""},
		{"empty token", url.Values{}, http.StatusUnauthorized, ""},
		{"token prefix", url.Values{"token": {testToken[:20]}}, http.StatusUnauthorized, ""},
		{"redirect elsewhere", url.Values{"token": {testToken}, "next": {"//evil.example/"}}, http.StatusSeeOther, "/"},
		{"redirect by scheme", url.Values{"token": {testToken}, "next": {"https://evil.example/"}}, http.StatusSeeOther, "/"},
		{"redirect with backslash", url.Values{"token": {testToken}, "next": {"/\\evil.example"}}, http.StatusSeeOther, "/"},
		{"redirect home", url.Values{"token": {testToken}, "next": {"/dlq?code=AUTH_FAILED"}}, http.StatusSeeOther, "/dlq?code=AUTH_FAILED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := noFollow.Post(f.srv.URL+"/login", "application/x-www-form-urlencoded", strings.NewReader(tt.form.Encode()))
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode == http.StatusTooManyRequests && tt.wantCode == http.StatusUnauthorized {
				return // the failed-login limiter: also a refusal
			}
			if res.StatusCode != tt.wantCode {
				t.Fatalf("status %d, want %d", res.StatusCode, tt.wantCode)
			}
			if tt.wantLoc == "" {
				if len(res.Cookies()) > 0 {
					t.Errorf("a refused login set cookies %v", res.Cookies())
				}
				return
			}
			if loc := res.Header.Get("Location"); loc != tt.wantLoc {
				t.Errorf("redirect to %q, want %q", loc, tt.wantLoc)
			}
		})
	}

	f.login(t)
	u, _ := url.Parse(f.srv.URL)
	cookies := f.http.Jar.Cookies(u)
	if len(cookies) != 1 {
		t.Fatalf("cookies after login: %v", cookies)
	}
	// The jar hides the attributes: read them from a fresh login.
	res, err = noFollow.Post(f.srv.URL+"/login", "application/x-www-form-urlencoded", strings.NewReader(url.Values{"token": {testToken}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if ck := res.Cookies(); len(ck) != 1 || !ck[0].HttpOnly || ck[0].SameSite != http.SameSiteStrictMode || ck[0].Path != "/" || ck[0].MaxAge <= 0 {
		t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/", ck)
	}

	csrf := f.csrf(t)
	forged := []struct {
		name    string
		csrf    string
		headers map[string]string
		want    string
	}{
		{"no CSRF token", "", nil, "CSRF token"},
		{"another CSRF token", "forged", nil, "CSRF token"},
		{"cross-site fetch", csrf, map[string]string{"Sec-Fetch-Site": "cross-site"}, "came from another site"},
		{"foreign origin", csrf, map[string]string{"Origin": "http://evil.example"}, "came from another site"},
	}
	for _, tt := range forged {
		t.Run(tt.name, func(t *testing.T) {
			form := url.Values{"op": {"purge"}, "scope": {"filter"}, "confirm": {"yes"}, "csrf": {tt.csrf}}
			req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/dlq/action", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			code, body, _ := f.do(t, req)
			if code != http.StatusForbidden || !strings.Contains(body, tt.want) {
				t.Errorf("%d, want 403 saying %q:\n%s", code, tt.want, body)
			}
		})
	}
	// The same origin, with the token, passes (and finds no stream).
	req, _ = http.NewRequest(http.MethodPost, f.srv.URL+"/dlq/action", strings.NewReader(url.Values{"op": {"replay"}, "scope": {"one"}, "seq": {"x"}, "csrf": {csrf}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", f.srv.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if code, body, _ := f.do(t, req); code != http.StatusBadRequest || !strings.Contains(body, "is not a dead letter&#39;s sequence") {
		t.Errorf("same-origin POST with the token: %d\n%s", code, body)
	}
	// GET never changes state: an action's address refuses it.
	if code, _ := f.get(t, "/dlq/action?op=purge&scope=filter&confirm=yes"); code != http.StatusBadRequest && code != http.StatusMethodNotAllowed {
		t.Errorf("GET /dlq/action: %d, want a refusal", code)
	}

	// Another Host is not this console (DNS rebinding).
	req, _ = http.NewRequest(http.MethodGet, f.srv.URL+"/login", nil)
	req.Host = "rebound.example"
	if code, _, _ := f.do(t, req); code != http.StatusMisdirectedRequest {
		t.Errorf("Host rebound.example: %d, want 421", code)
	}

	// Logout ends the session for good.
	if code, _, loc := f.post(t, "/logout", url.Values{"csrf": {csrf}}); code != http.StatusSeeOther || loc != "/login" {
		t.Fatalf("logout: %d → %q", code, loc)
	}
	req, _ = http.NewRequest(http.MethodGet, f.srv.URL+"/", nil)
	for _, ck := range cookies {
		req.AddCookie(ck) // the old cookie, as a thief would replay it
	}
	if res, err := noFollow.Do(req); err != nil || res.StatusCode != http.StatusSeeOther {
		t.Errorf("the session's cookie after logout: %v %v, want a redirect to /login", res, err)
	}
}

// A session ends after its TTL, by the console's clock: the next page
// asks for a login again, and a POST is refused.
func TestSessionsExpire(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	f := newFleet(t, fleetOptions{noWorker: true, console: func(c *console.Config) { c.Now, c.SessionTTL = clock, time.Hour }})
	f.login(t)
	csrf := f.csrf(t)
	if code, _ := f.get(t, "/jobs"); code != http.StatusOK {
		t.Fatalf("/jobs within the session: %d", code)
	}
	mu.Lock()
	now = now.Add(time.Hour + time.Second)
	mu.Unlock()
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/jobs", nil)
	if code, _, loc := f.do(t, req); code != http.StatusSeeOther || !strings.HasPrefix(loc, "/login") {
		t.Errorf("/jobs after the session's TTL: %d → %q, want the login page", code, loc)
	}
	if code, body, _ := f.post(t, "/logout", url.Values{"csrf": {csrf}}); code != http.StatusForbidden || !strings.Contains(body, "log in again") {
		t.Errorf("a POST after the session's TTL: %d\n%s", code, body)
	}
}
