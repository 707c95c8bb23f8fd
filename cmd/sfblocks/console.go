package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/cmd/sfblocks/internal/console"
	"github.com/sfblocks/sfblocks/worker"
)

const consoleSynopsis = `console [flags]

Serves the operators' web console: each account's breaker, token and API
budget; the workers with their jobs/s and job time; the dead letters, to
filter, inspect, edit, replay and purge (one, a selection, or everything a
filter matches); a job by id. It reads the fleet through NATS, as 'status'
and 'dlq' do: give it the operator's NATS credentials.

It needs an operator token, which its login page exchanges for a session:
  export SFBLOCKS_CONSOLE_TOKEN=$(openssl rand -base64 32)    (or SFBLOCKS_CONSOLE_TOKEN_FILE=/run/secrets/console-token)
Only --dev, on a loopback address, runs without one: the console then makes
a token for the run, writes it to a file of a new temporary directory and
logs the file's path.`

// consoleFlags are the flags of the console, shared by `console` and by
// `serve --console-addr`.
type consoleFlags struct {
	addr          string
	tokenFile     string
	tlsCert       string
	tlsKey        string
	secureCookie  bool
	trusted       string
	sampleEvery   time.Duration
	history       time.Duration
	replayTimeout time.Duration
}

// add defines the flags on fs, each named with prefix ("" for `console`,
// "console-" for `serve`); the address flag is off by default in serve.
func (f *consoleFlags) add(fs *flag.FlagSet, prefix, addrDefault string) {
	usage := "listen address of the web console"
	if addrDefault == "" {
		usage += "; empty (the default) serves none"
	}
	fs.StringVar(&f.addr, prefix+"addr", envOr("SFBLOCKS_CONSOLE_ADDR", addrDefault), usage+" (env SFBLOCKS_CONSOLE_ADDR)")
	fs.StringVar(&f.tokenFile, prefix+"token-file", envOr("SFBLOCKS_CONSOLE_TOKEN_FILE", ""), "file holding the console's operator token; or set SFBLOCKS_CONSOLE_TOKEN (env SFBLOCKS_CONSOLE_TOKEN_FILE)")
	fs.StringVar(&f.tlsCert, prefix+"tls-cert", envOr("SFBLOCKS_CONSOLE_TLS_CERT", ""), "serve the console over HTTPS with this certificate (env SFBLOCKS_CONSOLE_TLS_CERT)")
	fs.StringVar(&f.tlsKey, prefix+"tls-key", envOr("SFBLOCKS_CONSOLE_TLS_KEY", ""), "the key of the console's certificate (env SFBLOCKS_CONSOLE_TLS_KEY)")
	fs.BoolVar(&f.secureCookie, prefix+"secure-cookie", envBool("SFBLOCKS_CONSOLE_SECURE_COOKIE", false), "mark the session cookie Secure: set it when browsers reach the console over HTTPS through a proxy (on by itself with a certificate) (env SFBLOCKS_CONSOLE_SECURE_COOKIE)")
	fs.StringVar(&f.trusted, prefix+"trusted-origin", envOr("SFBLOCKS_CONSOLE_TRUSTED_ORIGIN", ""), "origins, comma-separated (https://console.example.com), whose POSTs the console accepts besides the request's own host: a proxy's public origin (env SFBLOCKS_CONSOLE_TRUSTED_ORIGIN)")
	fs.DurationVar(&f.sampleEvery, prefix+"sample-every", envDuration("SFBLOCKS_CONSOLE_SAMPLE_EVERY", console.DefaultSampleInterval), "how often the console samples the workers' micro stats for its charts (env SFBLOCKS_CONSOLE_SAMPLE_EVERY)")
	fs.DurationVar(&f.history, prefix+"history", envDuration("SFBLOCKS_CONSOLE_HISTORY", console.DefaultHistory), "how long the console keeps samples: its charts' span (env SFBLOCKS_CONSOLE_HISTORY)")
	fs.DurationVar(&f.replayTimeout, prefix+"replay-timeout", envDuration("SFBLOCKS_CONSOLE_REPLAY_TIMEOUT", 0), "how long each replay of the console waits for its job's reply; 0 means 3m (env SFBLOCKS_CONSOLE_REPLAY_TIMEOUT)")
}

func runConsole(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := newFlagSet("console", consoleSynopsis, stderr)
	var f consoleFlags
	f.add(fs, "", "127.0.0.1:9465")
	var conn worker.ConnConfig
	var natsURL string
	addConnFlags(fs, &conn, &natsURL)
	prefix := fs.String("prefix", envOr("SFBLOCKS_PREFIX", sfblocks.DefaultPrefix), "subject prefix of the fleet (env SFBLOCKS_PREFIX)")
	dev := fs.Bool("dev", false, "development mode: without an operator token, make one for this run, write it to a file and log the file's path; only on a loopback --addr")
	logLevel := fs.String("log-level", envOr("SFBLOCKS_LOG_LEVEL", "info"), "debug, info, warn or error (env SFBLOCKS_LOG_LEVEL)")
	logFormat := fs.String("log-format", envOr("SFBLOCKS_LOG_FORMAT", "auto"), "json, console, or auto (env SFBLOCKS_LOG_FORMAT)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := newLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		return err
	}
	// Refuse before connecting: a console without a credential never runs.
	devDir := ""
	if *dev {
		if devDir, err = os.MkdirTemp("", "sfblocks-console-"); err != nil {
			return err
		}
	}
	token, err := consoleToken(f, devDir, log)
	if err != nil {
		return err
	}
	conn.URLs = strings.Split(natsURL, ",")
	conn.Name = "sfblocks-console"
	nc, err := worker.Connect(conn)
	if err != nil {
		return err
	}
	defer nc.Close()
	stop, err := startConsole(ctx, nc, *prefix, token, f, log)
	if err != nil {
		return err
	}
	<-ctx.Done()
	stop()
	return nil
}

// consoleToken returns the operator token from SFBLOCKS_CONSOLE_TOKEN or
// the token file. Without one, it refuses to go on, except in development
// mode (devDir != "") on a loopback address, where it makes one and writes
// it to devDir/console-token (readable by its owner only), whose path it
// logs: the token itself is never logged.
func consoleToken(f consoleFlags, devDir string, log zerolog.Logger) (string, error) {
	token := os.Getenv("SFBLOCKS_CONSOLE_TOKEN")
	if f.tokenFile != "" {
		if token != "" {
			return "", errors.New("both SFBLOCKS_CONSOLE_TOKEN and a console token file are set: keep one")
		}
		data, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return "", fmt.Errorf("reading the console token file: %w", err)
		}
		token = strings.TrimSpace(string(data))
	}
	if token != "" {
		if len(token) < console.MinTokenLength {
			return "", fmt.Errorf("the console's operator token has %d characters; use at least %d: export SFBLOCKS_CONSOLE_TOKEN=$(openssl rand -base64 32)", len(token), console.MinTokenLength)
		}
		return token, nil
	}
	if devDir == "" {
		return "", errors.New("the console needs an operator token: export SFBLOCKS_CONSOLE_TOKEN=$(openssl rand -base64 32) " +
			"(or SFBLOCKS_CONSOLE_TOKEN_FILE=FILE); only development mode (console --dev, or serve without --config) on a loopback address runs without one")
	}
	if !loopback(f.addr) {
		return "", fmt.Errorf("development mode runs the console without an operator token only on a loopback address (127.0.0.1:9465, [::1]:9465, localhost:9465); %q is not one: set SFBLOCKS_CONSOLE_TOKEN", f.addr)
	}
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	token = base64.RawURLEncoding.EncodeToString(b)
	if err := os.MkdirAll(devDir, 0o700); err != nil {
		return "", fmt.Errorf("development mode: creating %s for the console's token: %w", devDir, err)
	}
	path := filepath.Join(devDir, "console-token")
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("development mode: writing the console's token: %w", err)
	}
	log.Warn().Str("token_file", path).
		Msg("development mode: no SFBLOCKS_CONSOLE_TOKEN is set, so the console made a token for this run; log in with the content of token_file. Set SFBLOCKS_CONSOLE_TOKEN anywhere else")
	return token, nil
}

// loopback reports whether addr listens on a loopback address only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// startConsole serves the console on f.addr until stop is called or ctx
// ends; it fails when the address cannot be listened on.
func startConsole(ctx context.Context, nc *nats.Conn, prefix, token string, f consoleFlags, log zerolog.Logger) (stop func(), err error) {
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return nil, errors.New("the console's TLS certificate and key go together (--tls-cert and --tls-key, or serve's --console-tls-cert and --console-tls-key): give both, or neither")
	}
	cfg := console.Config{NATS: nc, Prefix: prefix, Token: token, SecureCookie: f.secureCookie || f.tlsCert != "",
		SampleInterval: f.sampleEvery, History: f.history, ReplayTimeout: f.replayTimeout, Logger: log}
	if f.trusted != "" {
		cfg.TrustedOrigins = strings.Split(f.trusted, ",")
	}
	if loopback(f.addr) {
		// A page another site's DNS points at 127.0.0.1 is not this console.
		host, _, _ := net.SplitHostPort(f.addr)
		cfg.AllowedHosts = []string{"localhost", "127.0.0.1", "::1", strings.ToLower(host)}
	}
	c, err := console.New(cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("console listener on %s: %w (choose another address)", f.addr, err)
	}
	hs := &http.Server{Handler: c.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute}
	scheme := "http"
	serveErr := make(chan error, 1)
	if f.tlsCert != "" {
		scheme = "https"
		go func() { serveErr <- hs.ServeTLS(ln, f.tlsCert, f.tlsKey) }()
	} else {
		if !loopback(f.addr) && !cfg.SecureCookie {
			log.Warn().Str("addr", f.addr).Msg("the console serves plain HTTP on a non-loopback address: the token and the session cookie cross the network in clear; give it a TLS certificate, or put a TLS proxy in front and mark the cookie secure")
		}
		go func() { serveErr <- hs.Serve(ln) }()
	}
	sctx, cancel := context.WithCancel(ctx)
	go func() { _ = c.Run(sctx) }()
	go func() {
		if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error().Err(err).Msg("the console stopped serving")
		}
	}()
	log.Info().Str("addr", ln.Addr().String()).Str("url", scheme+"://"+ln.Addr().String()+"/").Msg("serving the console")
	return func() {
		cancel()
		dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer dcancel()
		_ = hs.Shutdown(dctx)
		_ = c.Close()
	}, nil
}
