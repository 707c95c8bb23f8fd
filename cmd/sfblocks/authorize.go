package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sfblocks/sfblocks/auth"
	"github.com/sfblocks/sfblocks/worker"
)

// stdin is where commands read pasted input and jobs; tests replace it.
var stdin io.Reader = os.Stdin

const authorizeSynopsis = `authorize --account NAME [flags]

Runs the OAuth Web Server flow (authorization code with PKCE) once for a
web_server account: open the printed URL in a browser, log in as the
integration user and approve; Salesforce redirects to the account's
redirect_url, where this command listens, checks the state, exchanges the
code and stores the refresh token, encrypted, in the fleet's token store
(the JetStream KV bucket on --nats-url, or --token-dir on a single host).

On a host without a browser use --paste: open the URL elsewhere, then paste
the whole URL the browser was redirected to (it fails to load; that is fine).

Needs SFBLOCKS_TOKEN_KEY (base64 of 32 bytes, the same on every worker).`

func runAuthorize(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("authorize", authorizeSynopsis, stderr)
	configPath := fs.String("config", envOr("SFBLOCKS_CONFIG", ""), "accounts config file (env SFBLOCKS_CONFIG)")
	account := fs.String("account", "", "the account to authorize (default: the default account)")
	paste := fs.Bool("paste", false, "read the redirect URL from stdin instead of listening for the callback")
	timeout := fs.Duration("timeout", 10*time.Minute, "how long to wait for the authorization")
	tokenDir := fs.String("token-dir", envOr("SFBLOCKS_TOKEN_DIR", ""), "keep tokens in encrypted files in this directory instead of NATS (single host only)")
	logLevel := fs.String("log-level", envOr("SFBLOCKS_LOG_LEVEL", "warn"), "debug, info, warn or error")
	var conn worker.ConnConfig
	var natsURL string
	addConnFlags(fs, &conn, &natsURL)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := newLogger(stderr, *logLevel, "auto")
	if err != nil {
		return err
	}
	cfg, err := loadAccounts(*configPath)
	if err != nil {
		return err
	}
	acct, err := cfg.Account(*account)
	if err != nil {
		return err
	}
	store, closeStore, err := persistentStore(ctx, natsURL, conn, *tokenDir)
	if err != nil {
		return err
	}
	defer closeStore()
	z, err := auth.NewAuthorizer(acct, auth.AuthorizerOptions{Store: store, Logger: log})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	// The callback listener is bound before the URL is printed: a
	// redirect_url on port 0 (tests, the simulator) gets its real port
	// into the URL, and a browser sent back at once finds it listening.
	var ln net.Listener
	if !*paste {
		if ln, err = z.Listen(); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "Authorizing account %q. Open this URL in a browser, log in as the integration user and approve:\n\n  %s\n\n", acct.Name, z.AuthCodeURL())
	var res *auth.Result
	if *paste {
		fmt.Fprintf(stdout, "Then paste the full URL the browser was sent to (%s?code=...):\n", z.RedirectURL())
		line, err := readLine(ctx, stdin)
		if err != nil {
			return fmt.Errorf("read the redirect URL: %w", err)
		}
		res, err = z.ExchangeRedirectURL(ctx, line)
		if err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "Waiting for the callback on %s (Ctrl-C to stop; --paste on a headless host) ...\n", z.RedirectURL())
		if res, err = z.ServeCallback(ctx, ln); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "Account %q authorized.\n  instance: %s\n  identity: %s\n  scope:    %s\nThe refresh token is stored; workers use it from now on. Check with: sfblocks accounts check\n",
		res.Account, res.InstanceURL, res.ID, res.Scope)
	return nil
}

// readLine reads one non-empty line from r, or fails when ctx ends first.
func readLine(ctx context.Context, r io.Reader) (string, error) {
	type result struct {
		s   string
		err error
	}
	ch := make(chan result, 1)
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 64<<10)
		for sc.Scan() {
			if s := strings.TrimSpace(sc.Text()); s != "" {
				ch <- result{s: s}
				return
			}
		}
		err := sc.Err()
		if err == nil {
			err = io.EOF
		}
		ch <- result{err: err}
	}()
	select {
	case r := <-ch:
		return r.s, r.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func loadAccounts(path string) (*auth.Config, error) {
	if path == "" {
		return nil, errors.New("no accounts config: give --config FILE or set SFBLOCKS_CONFIG (see README, 'Setting up an account')")
	}
	return auth.LoadConfig(path)
}

// persistentStore opens the token store that outlives this command: encrypted
// files in tokenDir, or the fleet's JetStream KV bucket.
func persistentStore(ctx context.Context, natsURL string, conn worker.ConnConfig, tokenDir string) (auth.Store, func(), error) {
	cipher, err := auth.CipherFromEnv(nil)
	if err != nil {
		return nil, func() {}, err
	}
	if tokenDir != "" {
		s, err := auth.NewFileStore(tokenDir, cipher)
		return s, func() {}, err
	}
	conn.URLs = strings.Split(natsURL, ",")
	conn.Name = "sfblocks-cli"
	nc, err := worker.Connect(conn)
	if err != nil {
		return nil, func() {}, fmt.Errorf("connect to NATS for the token store: %w (or use --token-dir on a single host)", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, func() {}, err
	}
	kctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	s, err := auth.NewKVStore(kctx, js, auth.KVStoreConfig{Cipher: cipher})
	if err != nil {
		nc.Close()
		return nil, func() {}, fmt.Errorf("open the token store: %w", err)
	}
	return s, nc.Close, nil
}
