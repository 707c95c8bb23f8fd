package console

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// webFS holds the templates and the static assets: the binary carries the
// whole console, and no Node toolchain is involved.
//
//go:embed web/templates/*.html web/static/*
var webFS embed.FS

// pageNames are the templates of web/templates, each rendered within
// layout.html.
var pageNames = []string{"login", "error", "accounts", "workers", "deadletters", "deadletter", "confirm", "action", "job"}

// pages are the parsed templates by name.
type pages map[string]*template.Template

func parsePages() (pages, error) {
	layout, err := template.New("layout.html").Funcs(funcs).ParseFS(webFS, "web/templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("console: parsing layout.html: %w", err)
	}
	p := pages{}
	for _, name := range pageNames {
		t, err := template.Must(layout.Clone()).ParseFS(webFS, "web/templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console: parsing %s.html: %w", name, err)
		}
		p[name] = t
	}
	return p, nil
}

// view is what every page's template gets: the layout's fields and the
// page's own data in Page.
type view struct {
	Title  string
	Nav    string // the menu entry to highlight
	CSRF   string // the session's CSRF token; "" when logged out
	Now    time.Time
	Prefix string
	Page   any
}

// render writes page with data, or a 500 page when it cannot be built
// (the page is built in memory first, so a template error never leaves
// half a page).
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, page, title, nav string, data any) {
	v := view{Title: title, Nav: nav, Now: c.now().UTC(), Prefix: c.cfg.Prefix, Page: data}
	if s := sessionOf(r); s != nil {
		v.CSRF = s.csrf
	}
	var buf bytes.Buffer
	if err := c.pages[page].ExecuteTemplate(&buf, "layout.html", v); err != nil {
		c.cfg.Logger.Error().Err(err).Str("page", page).Msg("console: rendering a page failed; this is a bug")
		if page != "error" {
			c.fail(w, r, http.StatusInternalServerError, "The console failed to build this page (a bug, logged). Go back and try again.")
			return
		}
		http.Error(w, "the console failed to build its error page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// errorPage is the data of error.html.
type errorPage struct {
	Status  int
	Reason  string
	Message string
	Back    string
}

// fail renders the error page: status, what went wrong and what to do.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, status int, message string) {
	back := "/"
	if sessionOf(r) == nil {
		back = "/login"
	}
	c.render(w, r, status, "error", http.StatusText(status), "", errorPage{Status: status, Reason: http.StatusText(status), Message: message, Back: back})
}

var funcs = template.FuncMap{
	"when":     when,
	"ago":      ago,
	"num":      num,
	"pct":      func(a, b int) string { return fmt.Sprintf("%.1f%%", 100*float64(a)/float64(max(b, 1))) },
	"dur":      dur,
	"pretty":   prettyText,
	"trunc":    trunc,
	"joinq":    joinQuery,
	"add":      func(a, b int) int { return a + b },
	"ms":       func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) },
	"bytes":    byteSize,
	"stateCls": stateClass,
}

// when writes a time in UTC, to the second; "—" for zero.
func when(t any) string {
	var tt time.Time
	switch v := t.(type) {
	case time.Time:
		tt = v
	case *time.Time:
		if v != nil {
			tt = *v
		}
	}
	if tt.IsZero() {
		return "—"
	}
	return tt.UTC().Format("2006-01-02 15:04:05Z")
}

// ago writes how long before now t was, roughly.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "in " + dur(-d)
	case d < time.Second:
		return "just now"
	}
	return dur(d) + " ago"
}

// dur writes a duration rounded for people: 3s, 4m10s, 2h5m, 3d4h.
func dur(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < time.Hour:
		return strings.TrimSuffix(d.Round(time.Second).String(), "0s")
	case d < 48*time.Hour:
		return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
	}
	days := int(d / (24 * time.Hour))
	h := int((d % (24 * time.Hour)) / time.Hour)
	if h == 0 {
		return fmt.Sprintf("%dd", days)
	}
	return fmt.Sprintf("%dd%dh", days, h)
}

// num writes an integer with thousands separators.
func num(v any) string {
	var n int64
	switch x := v.(type) {
	case int:
		n = int64(x)
	case int64:
		n = x
	case uint64:
		n = int64(x)
	default:
		return fmt.Sprint(v)
	}
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func byteSize(n uint64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
}

// prettyJSON indents JSON; other bytes come back as they are.
func prettyJSON(data []byte) string {
	var b bytes.Buffer
	if json.Indent(&b, data, "", "  ") != nil {
		return string(data)
	}
	return b.String()
}

// prettyText is prettyJSON for a template's string or bytes.
func prettyText(v any) string {
	switch x := v.(type) {
	case string:
		return prettyJSON([]byte(x))
	case []byte:
		return prettyJSON(x)
	case json.RawMessage:
		return prettyJSON(x)
	}
	return fmt.Sprint(v)
}

// trunc shortens s to n runes, with an ellipsis.
func trunc(n int, s string) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// joinQuery returns path?query with key set to value in q (nil q: none).
func joinQuery(path string, q url.Values, kv ...string) string {
	out := url.Values{}
	for k, v := range q {
		out[k] = append([]string(nil), v...)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			out.Del(kv[i])
		} else {
			out.Set(kv[i], kv[i+1])
		}
	}
	if len(out) == 0 {
		return path
	}
	return path + "?" + out.Encode()
}

// stateClass is the CSS class of a state's badge.
func stateClass(state string) string {
	switch state {
	case "closed", "valid", "ok", "succeeded", "up":
		return "good"
	case "half-open", "retrying", "rejected", "reserve", "none", "would_replay", "skipped", "running":
		return "warn"
	case "open", "failed", "exhausted", "failed_again":
		return "bad"
	}
	return "neutral"
}
