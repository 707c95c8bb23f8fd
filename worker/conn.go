package worker

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// Defaults of [ConnConfig].
const (
	DefaultNATSURL       = nats.DefaultURL // nats://127.0.0.1:4222
	DefaultConnName      = "sfblocks"
	DefaultConnTimeout   = 5 * time.Second
	DefaultReconnectWait = 2 * time.Second
	// DefaultPingInterval and DefaultMaxPingsOut make the client notice a
	// dead server within about 15s, well inside the default AckWait (30s):
	// a worker cut off from NATS stops starting jobs soon after. (Claims
	// keep a job from running twice either way.)
	DefaultPingInterval = 5 * time.Second
	DefaultMaxPingsOut  = 3
)

// ErrConnConfig is wrapped by every [ConnConfig] validation error.
var ErrConnConfig = errors.New("worker: invalid NATS connection config")

// ConnConfig says how to reach NATS. The zero value connects to
// nats://127.0.0.1:4222 without authentication. At most one of
// User/Password, Token, NKeySeedFile and CredsFile may be set.
type ConnConfig struct {
	// URLs are the servers to try, e.g. "nats://n1:4222". Each entry may
	// also be a comma-separated list. Defaults to [DefaultNATSURL].
	// Credentials embedded in a URL are never logged.
	URLs []string
	// Name is the connection name shown by the server (`nats server report
	// connections`). Defaults to "sfblocks".
	Name string
	// User and Password authenticate with a username and password.
	User, Password string
	// Token authenticates with a token.
	Token string
	// NKeySeedFile is the path of a file holding an NKEY user seed.
	NKeySeedFile string
	// CredsFile is the path of a decentralised-auth credentials file (JWT
	// plus seed).
	CredsFile string
	// TLSCAFile is a PEM bundle to verify the server with; TLSCertFile and
	// TLSKeyFile are a client certificate and key (both or neither). Any of
	// them turns TLS on.
	TLSCAFile, TLSCertFile, TLSKeyFile string
	// ConnectTimeout bounds each dial. Defaults to 5s.
	ConnectTimeout time.Duration
	// ReconnectWait is the pause between reconnect attempts to a server.
	// Defaults to 2s. The connection reconnects forever.
	ReconnectWait time.Duration
	// PingInterval and MaxPingsOut detect a dead server: after MaxPingsOut
	// unanswered pings sent every PingInterval the client reconnects.
	// Default to 20s and 3.
	PingInterval time.Duration
	MaxPingsOut  int
	// InOrder tries the servers in the order given (first the worker's own
	// node of a cluster, then the others) instead of nats.go's default
	// random order, which spreads a fleet given the same list over the
	// nodes only by chance. Defaults to false.
	InOrder bool
	// RetryOnFailedConnect makes [Connect] return a connection even when no
	// server answers yet; it keeps trying in the background (and /readyz
	// reports not ready). Defaults to false: Connect fails fast.
	RetryOnFailedConnect bool
	// Logger receives connection events (disconnected, reconnected, closed,
	// async errors). Defaults to a disabled logger.
	Logger zerolog.Logger
}

// Validate checks the config without connecting; errors wrap
// [ErrConnConfig] and never contain a password or token.
func (c ConnConfig) Validate() error {
	methods := 0
	for _, set := range []bool{c.User != "" || c.Password != "", c.Token != "", c.NKeySeedFile != "", c.CredsFile != ""} {
		if set {
			methods++
		}
	}
	if methods > 1 {
		return fmt.Errorf("%w: set only one of user/password, token, NKEY seed file and creds file", ErrConnConfig)
	}
	if c.Password != "" && c.User == "" {
		return fmt.Errorf("%w: a password needs a user", ErrConnConfig)
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return fmt.Errorf("%w: TLS client certificate and key must be set together", ErrConnConfig)
	}
	if c.ConnectTimeout < 0 || c.ReconnectWait < 0 || c.PingInterval < 0 || c.MaxPingsOut < 0 {
		return fmt.Errorf("%w: timeouts and counts must not be negative", ErrConnConfig)
	}
	for _, u := range c.urls() {
		if _, err := url.Parse(u); err != nil {
			return fmt.Errorf("%w: server URL %q is not a URL", ErrConnConfig, redactURL(u))
		}
	}
	return nil
}

func (c ConnConfig) urls() []string {
	var out []string
	for _, u := range c.URLs {
		for _, part := range strings.Split(u, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
	}
	if len(out) == 0 {
		out = []string{DefaultNATSURL}
	}
	return out
}

// redactURL hides the user info of a server URL.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.User == nil {
		if i := strings.LastIndex(u, "@"); i >= 0 {
			return "***@" + u[i+1:]
		}
		return u
	}
	p.User = url.User("***")
	return p.String()
}

// Options returns the nats.go options for c (what [Connect] uses), e.g. to
// add your own before calling nats.Connect.
func (c ConnConfig) Options() ([]nats.Option, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	log := c.Logger
	name := c.Name
	if name == "" {
		name = DefaultConnName
	}
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.Timeout(orDuration(c.ConnectTimeout, DefaultConnTimeout)),
		nats.ReconnectWait(orDuration(c.ReconnectWait, DefaultReconnectWait)),
		nats.PingInterval(orDuration(c.PingInterval, DefaultPingInterval)),
		nats.MaxPingsOutstanding(orInt(c.MaxPingsOut, DefaultMaxPingsOut)),
		nats.RetryOnFailedConnect(c.RetryOnFailedConnect),
		nats.ConnectHandler(func(nc *nats.Conn) {
			log.Info().Str("url", nc.ConnectedUrlRedacted()).Str("server", nc.ConnectedServerName()).Msg("NATS connected")
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			ev := log.Warn()
			if err != nil {
				ev = ev.Err(err)
			}
			ev.Msg("NATS disconnected; reconnecting")
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info().Str("url", nc.ConnectedUrlRedacted()).Msg("NATS reconnected")
		}),
		nats.ClosedHandler(func(nc *nats.Conn) {
			ev := log.Info()
			if err := nc.LastError(); err != nil {
				ev = log.Error().Err(err)
			}
			ev.Msg("NATS connection closed")
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			ev := log.Error().Err(err)
			if sub != nil {
				ev = ev.Str("subject", sub.Subject)
			}
			ev.Msg("NATS async error")
		}),
	}
	if c.InOrder {
		opts = append(opts, nats.DontRandomize())
	}
	switch {
	case c.User != "":
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	case c.Token != "":
		opts = append(opts, nats.Token(c.Token))
	case c.NKeySeedFile != "":
		o, err := nats.NkeyOptionFromSeed(c.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("%w: NKEY seed file %q: %w", ErrConnConfig, c.NKeySeedFile, err)
		}
		opts = append(opts, o)
	case c.CredsFile != "":
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	}
	if c.TLSCAFile != "" {
		opts = append(opts, nats.RootCAs(c.TLSCAFile))
	}
	if c.TLSCertFile != "" {
		opts = append(opts, nats.ClientCert(c.TLSCertFile, c.TLSKeyFile))
	}
	return opts, nil
}

// Connect opens a NATS connection from cfg: it reconnects forever, logs
// connection events to cfg.Logger and never logs credentials. It fails when
// cfg is invalid ([ErrConnConfig]) or, unless RetryOnFailedConnect is set,
// when no server accepts the connection; the error names the servers with
// their credentials redacted.
func Connect(cfg ConnConfig) (*nats.Conn, error) {
	opts, err := cfg.Options()
	if err != nil {
		return nil, err
	}
	urls := cfg.urls()
	nc, err := nats.Connect(strings.Join(urls, ","), opts...)
	if err != nil {
		redacted := make([]string, len(urls))
		for i, u := range urls {
			redacted[i] = redactURL(u)
		}
		return nil, fmt.Errorf("worker: connecting to NATS at %s: %w", strings.Join(redacted, ","), err)
	}
	return nc, nil
}

func orDuration(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func orInt(n, def int) int {
	if n == 0 {
		return def
	}
	return n
}
