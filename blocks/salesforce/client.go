package salesforce

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/oauth2"
)

// DefaultAPIVersion is the REST API version used unless [WithAPIVersion]
// says otherwise (Spring '26).
const DefaultAPIVersion = "66.0"

// DefaultTimeout bounds a call whose context has no deadline.
const DefaultTimeout = 30 * time.Second

// maxResponseBody bounds what the client reads of one response. A query page
// holds at most 2000 records, far below this.
const maxResponseBody = 64 << 20

// TokenSource supplies the bearer token of every request. It must be safe
// for concurrent use. The token's "instance_url" extra, as Salesforce's token
// endpoint returns it, gives the instance URL when the client has none
// configured.
type TokenSource interface {
	Token(ctx context.Context) (*oauth2.Token, error)
}

// TokenInvalidator is implemented by token sources that can drop a token
// Salesforce rejected. On 401 INVALID_SESSION_ID the client calls
// Invalidate with exactly the token that failed, asks for a token again and
// retries the request once. A source must ignore the call when it already
// holds a newer token.
type TokenInvalidator interface {
	Invalidate(failed *oauth2.Token)
}

// StaticToken returns a [TokenSource] that always returns the same access
// token, for tests and one-off tools. It cannot refresh: when Salesforce
// rejects the token, calls fail with [KindSessionExpired].
func StaticToken(accessToken, instanceURL string) TokenSource {
	tok := (&oauth2.Token{AccessToken: accessToken, TokenType: "Bearer"}).
		WithExtra(map[string]any{"instance_url": instanceURL})
	return staticSource{tok}
}

type staticSource struct{ tok *oauth2.Token }

func (s staticSource) Token(context.Context) (*oauth2.Token, error) { return s.tok, nil }

// Usage is the org's API request usage, from the Sforce-Limit-Info header
// (api-usage=Used/Max).
type Usage struct {
	Used, Max int
}

// Client calls one Salesforce org's REST API with one integration account's
// tokens. Create it with [New]; it is safe for concurrent use.
type Client struct {
	ts          TokenSource
	instanceURL string
	version     string
	hc          *http.Client
	timeout     time.Duration
	onUsage     func(Usage)
	userAgent   string
	usage       atomic.Pointer[Usage]
	lastBearer  atomic.Pointer[bearerValue]
	tracer      trace.Tracer
	spanAttrs   []attribute.KeyValue
}

// Option configures a [Client].
type Option func(*Client) error

// WithInstanceURL sets the instance URL (https://MyDomain.my.salesforce.com).
// Defaults to the "instance_url" that came with the token.
func WithInstanceURL(u string) Option {
	return func(c *Client) error {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
			return fmt.Errorf("salesforce: instance URL %q is not an absolute http(s) URL", u)
		}
		c.instanceURL = strings.TrimRight(u, "/")
		return nil
	}
}

var versionRE = regexp.MustCompile(`^[0-9]{2,3}\.0$`)

// WithAPIVersion sets the REST API version, written "66.0" (a leading "v" is
// accepted). Defaults to [DefaultAPIVersion].
func WithAPIVersion(v string) Option {
	return func(c *Client) error {
		v = strings.TrimPrefix(v, "v")
		if !versionRE.MatchString(v) {
			return fmt.Errorf("salesforce: API version %q is not of the form 66.0", v)
		}
		c.version = v
		return nil
	}
}

// WithHTTPClient sets the HTTP client. Defaults to [SharedHTTPClient], whose
// connection pool is sized for hundreds of concurrent calls.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error {
		if hc == nil {
			return errors.New("salesforce: nil HTTP client")
		}
		c.hc = hc
		return nil
	}
}

// WithTimeout bounds each call whose context carries no deadline. Defaults
// to [DefaultTimeout].
func WithTimeout(d time.Duration) Option {
	return func(c *Client) error {
		if d <= 0 {
			return fmt.Errorf("salesforce: timeout %v must be positive", d)
		}
		c.timeout = d
		return nil
	}
}

// WithUsageObserver calls f with the API usage of every response that
// carries a Sforce-Limit-Info header. f runs on the caller's goroutine and
// must be fast.
func WithUsageObserver(f func(Usage)) Option {
	return func(c *Client) error {
		c.onUsage = f
		return nil
	}
}

// WithUserAgent sets the User-Agent header. Defaults to "sfblocks".
func WithUserAgent(ua string) Option {
	return func(c *Client) error {
		c.userAgent = ua
		return nil
	}
}

// New returns a client that takes its tokens from ts.
func New(ts TokenSource, opts ...Option) (*Client, error) {
	if ts == nil {
		return nil, errors.New("salesforce: nil token source (use auth's cached source, or StaticToken in tests)")
	}
	c := &Client{
		ts:        ts,
		version:   DefaultAPIVersion,
		hc:        sharedHTTPClient,
		timeout:   DefaultTimeout,
		userAgent: "sfblocks",
		tracer:    defaultTracer(),
	}
	for _, opt := range opts {
		if err := opt(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// APIVersion returns the REST API version the client uses, such as "66.0".
func (c *Client) APIVersion() string { return c.version }

// Usage returns the API usage from the last response that reported it, and
// false when none has yet.
func (c *Client) Usage() (Usage, bool) {
	u := c.usage.Load()
	if u == nil {
		return Usage{}, false
	}
	return *u, true
}

// request is one REST call. path is relative to /services/data/vXX.X unless
// it starts with /services/.
type request struct {
	method string
	path   string
	// label names the request in errors and logs when path holds a
	// record's value (an upsert's external ID): "PATCH /sobjects/Task/
	// External_Id__c/{value}". Empty means method and path.
	label string
	// route is the path as a template ("/query", "/sobjects/{object}"),
	// which names the request's span: never a value, so that no record
	// value, statement or locator reaches a trace.
	route string
	// object is the sObject the request is about, when it names one: a
	// validated API name, safe for a span attribute.
	object string
	// q is the statement of a query or search, sent as the URL's query
	// string q=...; "" sends none.
	q    string
	body any
	// batchSize, when positive, asks for pages of that many records
	// (Sforce-Query-Options: batchSize=n).
	batchSize int
}

// name is how errors name the request: its label, else method and path
// (which then holds no record value).
func (r request) name() string {
	if r.label != "" {
		return r.label
	}
	return r.method + " " + r.path
}

// withoutURL unwraps a *url.Error: its message repeats the request's URL,
// query string included.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &urlFree{op: ue.Op, err: ue.Err}
	}
	return err
}

// urlFree stands for a *url.Error without its URL. It keeps the
// Timeout() answer a net.Error gives.
type urlFree struct {
	op  string
	err error
}

func (u *urlFree) Error() string { return u.op + ": " + u.err.Error() }
func (u *urlFree) Unwrap() error { return u.err }

// Timeout reports whether the request timed out.
func (u *urlFree) Timeout() bool {
	t, ok := u.err.(interface{ Timeout() bool })
	return ok && t.Timeout()
}

// Temporary is as net.Error asks.
func (u *urlFree) Temporary() bool { return u.Timeout() }

// pathSegment escapes a value for one segment of a URL path, "." and ".."
// included: they would otherwise name the segment's parent and change the
// resource.
func pathSegment(v string) string {
	switch v {
	case ".":
		return "%2E"
	case "..":
		return "%2E%2E"
	}
	return url.PathEscape(v)
}

// response is a REST answer with a 2xx or 300 status.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (c *Client) dataPath(p string) string {
	if strings.HasPrefix(p, "/services/") {
		return p
	}
	return "/services/data/v" + c.version + p
}

// do sends r, retrying once with a fresh token after 401 INVALID_SESSION_ID.
// Statuses other than 2xx and 300 come back as *APIError.
func (c *Client) do(ctx context.Context, r request) (*response, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	var body []byte
	if r.body != nil {
		var err error
		if body, err = json.Marshal(r.body); err != nil {
			return nil, fmt.Errorf("salesforce: encode request body: %w", err)
		}
	}
	for attempt := 0; ; attempt++ {
		tok, err := c.ts.Token(ctx)
		if err != nil {
			return nil, &TokenError{Err: err}
		}
		resp, err := c.send(ctx, tok, r, body, attempt)
		var apiErr *APIError
		if attempt == 0 && errors.As(err, &apiErr) && apiErr.ErrorCode == CodeInvalidSessionID {
			if inv, ok := c.ts.(TokenInvalidator); ok {
				inv.Invalidate(tok)
				continue
			}
		}
		return resp, err
	}
}

// send makes one HTTP request, in a span of its own; resend counts the
// requests sent before it for the same call (the retry after a 401). The
// request is built, and the answer read, in functions of their own, so
// that send's frame stays small: it is on the stack of every call in
// flight, whose goroutine stack doubles past 8 KB (see worker/pool.go).
func (c *Client) send(ctx context.Context, tok *oauth2.Token, r request, body []byte, resend int) (out *response, err error) {
	ctx, span := c.startSpan(ctx, r)
	status := 0
	defer func() { endSpan(span, status, err) }()
	req, err := c.newRequest(ctx, tok, r, body, span, resend)
	if err != nil {
		return nil, err
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return nil, sendError(ctx, r, req, err)
	}
	status = res.StatusCode
	return c.readResponse(r, req, res)
}

// newRequest builds the HTTP request of r.
func (c *Client) newRequest(ctx context.Context, tok *oauth2.Token, r request, body []byte, span trace.Span, resend int) (*http.Request, error) {
	base := c.instanceURL
	if base == "" {
		if s, _ := tok.Extra("instance_url").(string); s != "" {
			base = strings.TrimRight(s, "/")
		}
	}
	if base == "" {
		return nil, errors.New("salesforce: no instance URL: configure one, or use a token source whose tokens carry instance_url")
	}
	u := base + c.dataPath(r.path)
	if r.q != "" {
		// As url.Values{"q": {r.q}}.Encode() writes it, without the map.
		u += "?q=" + url.QueryEscape(r.q)
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("salesforce: build request: %w", err)
	}
	if span.IsRecording() {
		c.startAttrs(span, r, req.URL.Host, resend)
	}
	// Canonical keys set directly: Header.Set would canonicalize each
	// again, on every call.
	req.Header["Authorization"] = []string{c.bearer(tok)}
	req.Header["Accept"] = jsonType
	req.Header["User-Agent"] = []string{c.userAgent}
	if body != nil {
		req.Header["Content-Type"] = jsonType
	}
	if r.batchSize > 0 {
		req.Header["Sforce-Query-Options"] = []string{"batchSize=" + strconv.Itoa(r.batchSize)}
	}
	return req, nil
}

// sendError is the error of a request that got no answer. The *url.Error
// repeats the URL, and a query's URL holds the statement, values and all:
// the error keeps the request's label and host only (the token is in a
// header, never in a message).
func sendError(ctx context.Context, r request, req *http.Request, err error) error {
	if ctx.Err() != nil {
		return &transportError{op: r.name(), host: req.URL.Host, err: ctx.Err()}
	}
	return &transportError{op: r.name(), host: req.URL.Host, err: withoutURL(err)}
}

// readResponse reads and closes res, the answer to req.
func (c *Client) readResponse(r request, req *http.Request, res *http.Response) (*response, error) {
	defer res.Body.Close()
	data, err := readBody(res)
	if err != nil {
		return nil, &transportError{op: "read response of " + r.name(), host: req.URL.Host, err: withoutURL(err)}
	}
	c.observeUsage(res.Header.Get("Sforce-Limit-Info"))
	if res.StatusCode/100 == 2 || res.StatusCode == http.StatusMultipleChoices {
		return &response{status: res.StatusCode, header: res.Header, body: data}, nil
	}
	return nil, parseAPIError(res.StatusCode, data)
}

// jsonType is the value of the Accept and Content-Type headers. The
// transport only reads request headers, so every request can share it.
var jsonType = []string{"application/json"}

// bearer returns the Authorization header value of tok, remembered for the
// token in use: a token serves thousands of requests.
func (c *Client) bearer(tok *oauth2.Token) string {
	if b := c.lastBearer.Load(); b != nil && b.tok == tok {
		return b.value
	}
	b := &bearerValue{tok: tok, value: "Bearer " + tok.AccessToken}
	c.lastBearer.Store(b)
	return b.value
}

// bearerValue is one token's Authorization header value.
type bearerValue struct {
	tok   *oauth2.Token
	value string
}

// readBody reads a response's body, at most maxResponseBody bytes, in one
// allocation when the response says its length.
func readBody(res *http.Response) ([]byte, error) {
	if n := res.ContentLength; n > 0 && n <= maxResponseBody {
		data := make([]byte, n)
		if _, err := io.ReadFull(res.Body, data); err != nil {
			return nil, err
		}
		return data, nil
	}
	return io.ReadAll(io.LimitReader(res.Body, maxResponseBody))
}

func (c *Client) observeUsage(h string) {
	if h == "" {
		return
	}
	u, ok := ParseLimitInfo(h)
	if !ok {
		return
	}
	c.usage.Store(&u)
	if c.onUsage != nil {
		c.onUsage(u)
	}
}

// ParseLimitInfo parses a Sforce-Limit-Info header value such as
// "api-usage=18/5000" (possibly followed by "; per-app-api-usage=...").
func ParseLimitInfo(h string) (Usage, bool) {
	for part := range strings.SplitSeq(h, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || !strings.EqualFold(k, "api-usage") {
			continue
		}
		used, max, ok := strings.Cut(v, "/")
		if !ok {
			return Usage{}, false
		}
		u, err1 := strconv.Atoi(strings.TrimSpace(used))
		m, err2 := strconv.Atoi(strings.TrimSpace(max))
		if err1 != nil || err2 != nil {
			return Usage{}, false
		}
		return Usage{Used: u, Max: m}, true
	}
	return Usage{}, false
}

type wireError struct {
	Message   string   `json:"message"`
	ErrorCode string   `json:"errorCode"`
	Fields    []string `json:"fields"`
}

// parseAPIError reads Salesforce's error array; a body in another shape
// (an HTML error page from a proxy, an OAuth-style object) still yields an
// *APIError with the status, so classification works on the status alone.
func parseAPIError(status int, body []byte) *APIError {
	e := &APIError{StatusCode: status, Body: truncate(body, maxErrorBody)}
	var arr []wireError
	if err := json.Unmarshal(body, &arr); err == nil && len(arr) > 0 {
		e.ErrorCode, e.Message, e.Fields = arr[0].ErrorCode, arr[0].Message, arr[0].Fields
		return e
	}
	var one wireError
	if err := json.Unmarshal(body, &one); err == nil && one.ErrorCode != "" {
		e.ErrorCode, e.Message, e.Fields = one.ErrorCode, one.Message, one.Fields
		return e
	}
	e.ErrorCode = CodeHTTPError
	e.Message = http.StatusText(status)
	if status == http.StatusServiceUnavailable {
		e.ErrorCode = CodeServerUnavailable
	}
	return e
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		b = b[:n]
	}
	return append([]byte(nil), b...)
}

var apiNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,79}$`)

// ValidAPIName reports whether s is a well-formed Salesforce API name for an
// object or field (letters, digits and underscores, starting with a letter,
// at most 80 characters; custom names end in __c and the like).
func ValidAPIName(s string) bool {
	return apiNameRE.MatchString(s)
}

var idRE = regexp.MustCompile(`^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$`)

// ValidID reports whether s has the form of a Salesforce record id: 15 or
// 18 letters and digits.
func ValidID(s string) bool { return idRE.MatchString(s) }

func checkName(what, s string) error {
	if !ValidAPIName(s) {
		return fmt.Errorf("%w: %s %q (use the API name, such as Contact or My_Field__c)", ErrInvalidName, what, s)
	}
	return nil
}

func decodeJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("salesforce: decode response: %w", err)
	}
	return nil
}

// ErrNoIdentity is returned by [Client.UserID] when the access token came
// without Salesforce's identity URL (its "id").
var ErrNoIdentity = errors.New("salesforce: the access token carries no identity URL (\"id\"), so the integration user is unknown")

// UserID returns the 18-character id of the user the client's tokens act
// as, read from the token's identity URL
// (https://login.salesforce.com/id/<org id>/<user id>), which Salesforce's
// token endpoint returns as "id". It makes no call to the REST API.
func (c *Client) UserID(ctx context.Context) (string, error) {
	tok, err := c.ts.Token(ctx)
	if err != nil {
		return "", &TokenError{Err: err}
	}
	id, _ := tok.Extra("id").(string)
	u, err := url.Parse(id)
	if id == "" || err != nil {
		return "", ErrNoIdentity
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) < 3 || parts[0] != "id" || !ValidID(parts[len(parts)-1]) {
		return "", fmt.Errorf("%w (unexpected identity URL path %q)", ErrNoIdentity, u.Path)
	}
	return parts[len(parts)-1], nil
}
