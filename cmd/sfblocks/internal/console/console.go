package console

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/worker/client"
)

// Defaults of [Config].
const (
	// DefaultSessionTTL is how long a login lasts.
	DefaultSessionTTL = 12 * time.Hour
	// DefaultSampleInterval is how often the workers' micro stats are
	// sampled for the charts.
	DefaultSampleInterval = 5 * time.Second
	// DefaultHistory is how long samples are kept: the charts' span.
	DefaultHistory = 10 * time.Minute
	// DefaultTimeout bounds the NATS reads of one page.
	DefaultTimeout = 10 * time.Second
	// DefaultService is the workers' micro service name.
	DefaultService = "sfblocks"
	// MinTokenLength is the shortest operator token accepted.
	MinTokenLength = 16
)

// ErrInvalidConfig is wrapped by [New]'s validation errors.
var ErrInvalidConfig = errors.New("console: invalid configuration")

// Config configures a [Console]. NATS and Token are required; every other
// field has a default.
type Config struct {
	// NATS is the connection to the fleet's NATS server; the caller keeps
	// and closes it. Its user needs the operator role's rights (see
	// worker/deploy/nats-roles.conf); pages whose reads it may not make
	// say so.
	NATS *nats.Conn
	// Prefix is the fleet's subject prefix. Defaults to
	// [sfblocks.DefaultPrefix].
	Prefix string
	// Service is the workers' micro service name, asked on $SRV.INFO and
	// $SRV.STATS. Defaults to [DefaultService].
	Service string
	// Token is the operator token that /login exchanges for a session: at
	// least [MinTokenLength] characters (generate it with `openssl rand
	// -base64 32`).
	Token string
	// SecureCookie marks the session cookie Secure (and names it with the
	// __Host- prefix): set it when browsers reach the console over HTTPS,
	// directly or through a proxy.
	SecureCookie bool
	// TrustedOrigins are origins ("https://console.example.com") besides
	// the request's own Host from which state-changing requests are
	// accepted: the public origin of a proxy that rewrites Host.
	TrustedOrigins []string
	// AllowedHosts, when set, are the only host names (without port) the
	// console answers; other Host headers get 421. A console on a loopback
	// address sets localhost, 127.0.0.1 and ::1, against DNS rebinding.
	AllowedHosts []string
	// SessionTTL is how long a login lasts. Defaults to
	// [DefaultSessionTTL] (12h).
	SessionTTL time.Duration
	// SampleInterval is how often [Console.Run] samples the workers' micro
	// stats. Defaults to [DefaultSampleInterval] (5s).
	SampleInterval time.Duration
	// History is how long samples are kept. Defaults to [DefaultHistory]
	// (10m).
	History time.Duration
	// Timeout bounds the NATS reads of one page. Defaults to
	// [DefaultTimeout] (10s).
	Timeout time.Duration
	// ReplayTimeout is how long one replay waits for its job's reply.
	// Defaults to [client.DefaultReplayTimeout] (3m).
	ReplayTimeout time.Duration
	// Logger receives one line per login, action and failure. The zero
	// value logs nothing.
	Logger zerolog.Logger
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() (Config, error) {
	if c.NATS == nil {
		return c, fmt.Errorf("%w: no NATS connection", ErrInvalidConfig)
	}
	if len(c.Token) < MinTokenLength {
		return c, fmt.Errorf("%w: the operator token has %d characters, fewer than %d: generate one with `openssl rand -base64 32`",
			ErrInvalidConfig, len(c.Token), MinTokenLength)
	}
	if c.Prefix == "" {
		c.Prefix = sfblocks.DefaultPrefix
	}
	if c.Service == "" {
		c.Service = DefaultService
	}
	if c.SessionTTL <= 0 {
		c.SessionTTL = DefaultSessionTTL
	}
	if c.SampleInterval <= 0 {
		c.SampleInterval = DefaultSampleInterval
	}
	if c.History <= 0 {
		c.History = DefaultHistory
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.ReplayTimeout <= 0 {
		c.ReplayTimeout = client.DefaultReplayTimeout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}

// Console serves the web console. Create it with [New], serve
// [Console.Handler], run [Console.Run] for the workers' charts, and
// [Console.Close] it to stop the actions still running. It is safe for
// concurrent use.
type Console struct {
	cfg     Config
	client  *client.Client
	js      jetstream.JetStream
	pages   pages
	static  http.Handler
	handler http.Handler

	sessions *sessions
	logins   *rate.Limiter // failed logins
	actions  *actions
	samples  *sampler

	// base is the context of the actions (replays, purges): they outlive
	// the request that started them, not the console.
	base   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a console for cfg. It fails when cfg is invalid (no NATS
// connection, a short token, an invalid prefix or trusted origin).
func New(cfg Config) (*Console, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	cl, err := client.New(cfg.NATS, client.WithPrefix(cfg.Prefix))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	js, err := jetstream.New(cfg.NATS)
	if err != nil {
		return nil, fmt.Errorf("console: JetStream: %w", err)
	}
	p, err := parsePages()
	if err != nil {
		return nil, err
	}
	staticFS, err := fs.Sub(webFS, "web/static")
	if err != nil {
		return nil, err
	}
	c := &Console{cfg: cfg, client: cl, js: js, pages: p,
		static:   http.StripPrefix("/static/", http.FileServerFS(staticFS)),
		sessions: newSessions(cfg.SessionTTL, cfg.Now),
		// A failed login costs one token: 10 at once, then one per
		// second. A right token is never refused.
		logins:  rate.NewLimiter(rate.Every(time.Second), 10),
		actions: newActions(),
		samples: newSampler(cfg.History),
	}
	c.base, c.cancel = context.WithCancel(context.Background())
	if c.handler, err = c.routes(); err != nil {
		c.cancel()
		return nil, err
	}
	return c, nil
}

// Handler returns the console's HTTP handler.
func (c *Console) Handler() http.Handler { return c.handler }

// Run samples the workers' micro stats every SampleInterval until ctx
// ends, for the Workers page's charts; it returns nil then.
func (c *Console) Run(ctx context.Context) error {
	t := time.NewTicker(c.cfg.SampleInterval)
	defer t.Stop()
	for {
		c.sample(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Close cancels the actions still running (a replay cancelled keeps its
// dead letters) and waits for them to end.
func (c *Console) Close() error {
	c.cancel()
	c.wg.Wait()
	return nil
}

// routes builds the handler: security headers and host check on
// everything, cross-origin protection on every non-safe request, a session
// on every page but /login and /static, a CSRF token on every POST.
func (c *Console) routes() (http.Handler, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", c.loginPage)
	mux.HandleFunc("POST /login", c.login)
	mux.Handle("GET /static/", c.static)
	mux.Handle("POST /logout", c.session(c.logout))
	mux.Handle("GET /{$}", c.session(c.accountsPage))
	mux.Handle("GET /workers", c.session(c.workersPage))
	mux.Handle("GET /dlq", c.session(c.deadLettersPage))
	mux.Handle("GET /dlq/state", c.session(c.deadLettersState))
	mux.Handle("GET /dlq/{seq}", c.session(c.deadLetterPage))
	mux.Handle("POST /dlq/action", c.session(c.deadLetterAction))
	mux.Handle("GET /actions/{id}", c.session(c.actionPage))
	mux.Handle("GET /actions/{id}/progress", c.session(c.actionProgress))
	mux.Handle("POST /actions/{id}/cancel", c.session(c.cancelAction))
	mux.Handle("GET /jobs", c.session(c.jobPage))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			c.fail(w, r, http.StatusMethodNotAllowed, "This address takes GET only; actions are the buttons of the console's pages.")
			return
		}
		c.fail(w, r, http.StatusNotFound, "There is no such page. The console's pages are Accounts, Workers, Dead letters and Job, in the menu above.")
	})

	cop := http.NewCrossOriginProtection()
	for _, o := range c.cfg.TrustedOrigins {
		if err := cop.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("%w: trusted origin %q: %w (write scheme://host[:port])", ErrInvalidConfig, o, err)
		}
	}
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.cfg.Logger.Warn().Str("path", r.URL.Path).Str("origin", r.Header.Get("Origin")).Msg("console: refused a cross-origin request")
		c.fail(w, r, http.StatusForbidden, "Refused: this request came from another site (its Origin or Sec-Fetch-Site says so). "+
			"Use the console's own pages; behind a proxy that rewrites Host, start the console with --trusted-origin set to its public origin.")
	}))
	return c.secure(c.recover(cop.Handler(mux))), nil
}

// recover turns a panic in a handler into a 500 page and a log line.
func (c *Console) recover(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				c.cfg.Logger.Error().Str("path", r.URL.Path).Interface("panic", v).Msg("console: a page failed; this is a bug")
				c.fail(w, r, http.StatusInternalServerError, "The console failed to build this page (a bug, logged). Go back and try again.")
			}
		}()
		h.ServeHTTP(w, r)
	})
}

// readCtx bounds a page's NATS reads.
func (c *Console) readCtx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), c.cfg.Timeout)
}

func (c *Console) now() time.Time { return c.cfg.Now() }
