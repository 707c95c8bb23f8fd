package sfsim

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim/simdb"
)

// Defaults applied by [New] to zero fields of [Options].
const (
	DefaultClientID       = "sfsim-client-id"
	DefaultClientSecret   = "sfsim-client-secret"
	DefaultSessionTimeout = 2 * time.Hour
	DefaultDailyAPILimit  = 15000
	// DefaultConcurrentRequestLimit is Salesforce's limit on long-running
	// concurrent requests in production orgs.
	DefaultConcurrentRequestLimit = 25
	// DefaultLongRequestThreshold is how long a request runs before
	// Salesforce counts it against the concurrent-request limit.
	DefaultLongRequestThreshold = 20 * time.Second
	// DefaultMaxQueryCursors is how many query locators stay open at once;
	// Salesforce documents 10 per user, releasing the oldest when an 11th opens.
	DefaultMaxQueryCursors = 10
	// LatestAPIVersion is the newest API version the simulator serves by default.
	LatestAPIVersion = "66.0"
)

// Options configures a [Server]. The zero value works: every field has a
// default, listed on the field. The field names map one to one onto the
// flags of `sfblocks sim`.
type Options struct {
	// ClientID is the consumer key of the External Client App the simulator
	// accepts. Defaults to "sfsim-client-id". Any other client_id gets
	// invalid_client_id "client identifier invalid".
	ClientID string
	// ClientSecret is that app's consumer secret. Defaults to
	// "sfsim-client-secret". A wrong secret gets invalid_client
	// "invalid client credentials".
	ClientSecret string
	// CallbackURLs are the registered redirect URIs, compared exactly. When
	// empty, any http loopback URL (host 127.0.0.1, [::1] or localhost, any
	// port and path) is accepted: a test convenience that real Salesforce
	// does not offer.
	CallbackURLs []string
	// SessionTimeout is the lifetime of an access token from issue. Defaults
	// to 2 hours. An expired token gets 401 INVALID_SESSION_ID on data calls;
	// the refresh token stays usable.
	SessionTimeout time.Duration
	// RotateRefreshTokens turns on refresh token rotation: every refresh
	// returns a new refresh token and retires the old one; presenting a
	// retired one revokes the whole token family (every refresh and access
	// token descending from the authorization) with invalid_grant "expired
	// access/refresh token"; a second refresh with a token whose refresh is
	// still in flight gets invalid_grant "token request is already being
	// processed". Defaults to off, Salesforce's default, where refreshes
	// return no refresh token and the original one stays valid.
	RotateRefreshTokens bool
	// DailyAPILimit is the org's daily REST request allocation. Defaults to
	// 15000. Past it data calls get 403 REQUEST_LIMIT_EXCEEDED.
	DailyAPILimit int
	// ConcurrentRequestLimit is how many long-running REST requests (see
	// LongRequestThreshold) the org runs at once; a request that arrives
	// while that many are running gets 403 REQUEST_LIMIT_EXCEEDED
	// "ConcurrentRequests (Concurrent API Requests) Limit exceeded.".
	// Defaults to 25, Salesforce's limit for production orgs (5 for
	// Developer and trial orgs).
	ConcurrentRequestLimit int
	// LongRequestThreshold is how long a request runs before it counts
	// against ConcurrentRequestLimit. Defaults to 20 s, as Salesforce
	// documents; tests shorten it rather than wait.
	LongRequestThreshold time.Duration
	// TokenLatency is added to every successful token grant before it is
	// answered, so tests can hold refreshes in flight. Defaults to none.
	TokenLatency time.Duration
	// APIVersions are the versions served under /services/data, oldest
	// first. Defaults to "31.0" through "66.0". Any other version gets 404
	// NOT_FOUND.
	APIVersions []string
	// MaxQueryCursors is how many query locators stay open at once; opening
	// another releases the oldest, whose nextRecordsUrl then gets 400
	// INVALID_QUERY_LOCATOR. Defaults to 10, as Salesforce documents.
	MaxQueryCursors int
	// QueryLocatorTimeout is how long an unused query locator lives.
	// Defaults to 15 minutes, as Salesforce documents.
	QueryLocatorTimeout time.Duration
	// MyDomainHost is the host name that stands for the org's My Domain: a
	// request whose Host header names it is a My Domain request (client
	// credentials are accepted there only), and instance_url uses it.
	// Defaults to "localhost"; set it to the simulator's service name when
	// other containers reach it by that name (docker-compose).
	MyDomainHost string
	// Username is the pre-authorized admin user every token acts as.
	// Defaults to "admin@sfsim.example".
	Username string
	// DB holds the org's data. Defaults to simdb.Default() (schema and seed
	// data), which then shares the Now clock.
	DB *simdb.DB
	// H2C makes [Start]'s listener speak cleartext HTTP/2 (prior
	// knowledge) beside HTTP/1.1 and advertise it in its HTTP/1.1 answers
	// (Alt-Svc: h2c=":PORT"), which sfblocks's client then takes. Off by
	// default: whether an org's endpoint offers HTTP/2 is not known here,
	// and HTTP/1.1 is what every Salesforce client can count on.
	H2C bool
	// Now is the clock. Defaults to time.Now. Token and code expiry,
	// issued_at, outage ends and locator expiry read it, so tests can move
	// time instead of sleeping.
	Now func() time.Time
}

// Server is an in-memory Salesforce org: OAuth endpoints under
// /services/oauth2, REST under /services/data, and test controls under
// /_sim. It is safe for concurrent use.
type Server struct {
	opts   Options
	db     *simdb.DB
	faults *Faults
	stats  statsCounter
	tokens *tokenStore
	cursor *cursorStore
	mux    *http.ServeMux

	// closing is closed by Close, releasing answers the commit-then-drop
	// fault is withholding.
	closing   chan struct{}
	closeOnce sync.Once

	latMu          sync.Mutex
	tokenLatency   time.Duration
	latencyChanged chan struct{}

	// running holds the start times of the REST requests being served,
	// oldest first, for the concurrent-request limit.
	runMu   sync.Mutex
	running *list.List

	mu       sync.Mutex
	apiUsed  int
	httpSrv  *http.Server
	listener net.Listener
	port     string
}

// New builds a Server from opts, filling defaults. It fails when the default
// database cannot be loaded or an option is out of range. Use [Server.Handler]
// with httptest, or [Start] to listen on an address.
func New(opts Options) (*Server, error) {
	if opts.ClientID == "" {
		opts.ClientID = DefaultClientID
	}
	if opts.MyDomainHost == "" {
		opts.MyDomainHost = "localhost"
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = DefaultClientSecret
	}
	if opts.SessionTimeout == 0 {
		opts.SessionTimeout = DefaultSessionTimeout
	}
	if opts.SessionTimeout < 0 {
		return nil, fmt.Errorf("sfsim: SessionTimeout %v is negative (use a positive duration or 0 for the 2h default)", opts.SessionTimeout)
	}
	if opts.DailyAPILimit == 0 {
		opts.DailyAPILimit = DefaultDailyAPILimit
	}
	if opts.DailyAPILimit < 0 {
		return nil, fmt.Errorf("sfsim: DailyAPILimit %d is negative", opts.DailyAPILimit)
	}
	if opts.ConcurrentRequestLimit == 0 {
		opts.ConcurrentRequestLimit = DefaultConcurrentRequestLimit
	}
	if opts.ConcurrentRequestLimit < 0 {
		return nil, fmt.Errorf("sfsim: ConcurrentRequestLimit %d is negative", opts.ConcurrentRequestLimit)
	}
	if opts.LongRequestThreshold == 0 {
		opts.LongRequestThreshold = DefaultLongRequestThreshold
	}
	if opts.LongRequestThreshold < 0 {
		return nil, fmt.Errorf("sfsim: LongRequestThreshold %v is negative", opts.LongRequestThreshold)
	}
	if opts.TokenLatency < 0 {
		return nil, fmt.Errorf("sfsim: TokenLatency %v is negative", opts.TokenLatency)
	}
	if len(opts.APIVersions) == 0 {
		opts.APIVersions = defaultVersions()
	}
	for _, v := range opts.APIVersions {
		if _, ok := versionLabel(v); !ok {
			return nil, fmt.Errorf("sfsim: API version %q is not of the form NN.0 (e.g. %q)", v, LatestAPIVersion)
		}
	}
	if opts.MaxQueryCursors == 0 {
		opts.MaxQueryCursors = DefaultMaxQueryCursors
	}
	if opts.QueryLocatorTimeout == 0 {
		opts.QueryLocatorTimeout = 15 * time.Minute
	}
	if opts.Username == "" {
		opts.Username = "admin@sfsim.example"
	}
	customClock := opts.Now != nil
	if !customClock {
		opts.Now = time.Now
	}
	db := opts.DB
	if db == nil {
		var err error
		db, err = simdb.Default()
		if err != nil {
			return nil, fmt.Errorf("sfsim: load default data: %w", err)
		}
		if customClock {
			// The database is ours, so it shares the clock (CreatedDate,
			// TODAY); a caller's DB keeps whatever clock the caller gave it.
			db.SetNow(opts.Now)
		}
	}
	s := &Server{
		opts:   opts,
		db:     db,
		faults: newFaults(),
		tokens: newTokenStore(),
		cursor: newCursorStore(opts.MaxQueryCursors, opts.QueryLocatorTimeout),

		closing: make(chan struct{}),
		running: list.New(),

		tokenLatency:   opts.TokenLatency,
		latencyChanged: make(chan struct{}),
	}
	s.stats.init()
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("/services/oauth2/", s.serveOAuth)
	s.mux.HandleFunc("/services/data", s.serveData)
	s.mux.HandleFunc("/services/data/", s.serveData)
	s.mux.HandleFunc("/_sim/", s.serveAdmin)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeErrors(w, http.StatusNotFound, apiError{Code: "NOT_FOUND", Message: msgNotFound})
	})
	return s, nil
}

// Start builds a Server and serves it on addr ("127.0.0.1:0" picks a free
// port). The same listener answers as the login host (127.0.0.1) and as the
// org's My Domain (localhost), in HTTP/1.1 and, with [Options.H2C], in
// cleartext HTTP/2 (prior knowledge), which its HTTP/1.1 answers then
// advertise (Alt-Svc). Stop it with [Server.Close].
func Start(addr string, opts Options) (*Server, error) {
	s, err := New(opts)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("sfsim: listen on %s: %w", addr, err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	if opts.H2C {
		srv.Handler, srv.Protocols = advertiseH2C(srv.Handler, port), serverProtocols()
	}
	s.mu.Lock()
	s.httpSrv, s.listener, s.port = srv, l, port
	s.mu.Unlock()
	go func() { _ = srv.Serve(l) }()
	return s, nil
}

// serverProtocols are HTTP/1.1, which every Salesforce client speaks, and
// cleartext HTTP/2 with prior knowledge, which sfblocks's own client speaks
// to http:// hosts that advertise it: one connection carries every call in
// flight.
func serverProtocols() *http.Protocols {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	return &p
}

// advertiseH2C tells HTTP/1.1 clients that this listener speaks cleartext
// HTTP/2 too (RFC 7838 Alt-Svc; sfblocks's client switches to it, other
// clients ignore it). Only [Start] adds it: an httptest server wrapping
// [Server.Handler] may speak HTTP/1.1 only.
func advertiseH2C(h http.Handler, port string) http.Handler {
	altSvc := []string{`h2c=":` + port + `"`}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 1 {
			w.Header()["Alt-Svc"] = altSvc
		}
		h.ServeHTTP(w, r)
	})
}

// Close stops a server started with [Start]: the listener closes and open
// connections are dropped. For a server built with [New] it only ends the
// answers the commit-then-drop fault is withholding (closing their
// connections), so an httptest server wrapping it can shut down.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { close(s.closing) })
	s.mu.Lock()
	srv := s.httpSrv
	s.httpSrv = nil
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("sfsim: close: %w", err)
	}
	return srv.Close()
}

// Handler returns the simulator's HTTP handler, for httptest.NewServer. Token
// responses then name instance_url from the request's port on "localhost".
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// LoginURL is the stand-in for https://login.salesforce.com:
// "http://127.0.0.1:PORT". Empty unless the server was started with [Start].
func (s *Server) LoginURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.port == "" {
		return ""
	}
	return "http://127.0.0.1:" + s.port
}

// MyDomainURL is the stand-in for the org's My Domain
// (https://MyDomainName.my.salesforce.com): "http://localhost:PORT", the same
// listener as [Server.LoginURL] told apart by the Host header. Empty unless
// the server was started with [Start].
func (s *Server) MyDomainURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.port == "" {
		return ""
	}
	return "http://" + s.opts.MyDomainHost + ":" + s.port
}

// InstanceURL is what token responses carry as instance_url; it equals
// [Server.MyDomainURL].
func (s *Server) InstanceURL() string { return s.MyDomainURL() }

// DB returns the org's data, for seeding and assertions.
func (s *Server) DB() *simdb.DB { return s.db }

// Faults returns the fault injection controls; see [Faults].
func (s *Server) Faults() *Faults { return s.faults }

// Reset clears injected faults, the statistics and the daily API usage. The
// data and the issued tokens stay. POST /_sim/reset does the same.
func (s *Server) Reset() {
	s.faults.Reset()
	s.stats.reset()
	s.mu.Lock()
	s.apiUsed = 0
	s.mu.Unlock()
}

// APIUsage reports the daily requests used and the daily limit, as the
// Sforce-Limit-Info header shows them.
func (s *Server) APIUsage() (used, limit int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.apiUsed, s.opts.DailyAPILimit
}

// SetAPIUsage sets the daily requests used so far, so tests can reach the
// limit without making thousands of calls.
func (s *Server) SetAPIUsage(used int) {
	s.mu.Lock()
	s.apiUsed = used
	s.mu.Unlock()
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// isMyDomainHost reports whether the request came in on the My Domain name
// rather than the login host ([Options.MyDomainHost], "localhost" by
// default).
func (s *Server) isMyDomainHost(r *http.Request) bool {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return strings.EqualFold(host, s.opts.MyDomainHost)
}

// instanceURLFor is the My Domain URL on the port the request arrived on.
func (s *Server) instanceURLFor(r *http.Request) string {
	if u := s.MyDomainURL(); u != "" {
		return u
	}
	_, port, err := net.SplitHostPort(r.Host)
	if err != nil || port == "" {
		return "http://" + s.opts.MyDomainHost
	}
	return "http://" + s.opts.MyDomainHost + ":" + port
}
