package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/oauth2"
)

// AuthorizerOptions configures [NewAuthorizer].
type AuthorizerOptions struct {
	// Store receives the refresh token. Required; it must outlive the
	// authorize command (a KVStore, shared with the workers).
	Store Store
	// HTTPClient calls the token endpoint. Defaults to http.DefaultClient.
	HTTPClient *http.Client
	// Logger; never receives a secret. The zero value logs nothing.
	Logger zerolog.Logger
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
}

// Authorizer runs the OAuth 2.0 Web Server flow with PKCE (S256) once for
// one account, as an admin: [Authorizer.AuthCodeURL] is opened in a
// browser, Salesforce redirects to the account's redirect URL, and
// [Authorizer.ServeCallback] (local listener) or
// [Authorizer.ExchangeRedirectURL] (URL pasted on a headless host) checks
// the state, exchanges the code with the verifier and stores the refresh
// token. One Authorizer serves one authorization.
type Authorizer struct {
	acct     *Account
	opts     AuthorizerOptions
	log      zerolog.Logger
	state    string
	verifier Secret
	// redirect is the account's redirect URL, or the one [Authorizer.Listen]
	// bound when the account's names port 0.
	redirect string
}

// Result describes a completed authorization; it holds no secret.
type Result struct {
	Account     string
	InstanceURL string
	// ID is the identity URL of the user who authorized.
	ID       string
	Scope    string
	IssuedAt time.Time
}

// NewAuthorizer prepares an authorization for a web_server account,
// generating the state and the PKCE verifier. Fails with INVALID_CONFIG for
// a client_credentials account or without a Store.
func NewAuthorizer(a *Account, opts AuthorizerOptions) (*Authorizer, error) {
	if a == nil || a.Flow != FlowWebServer {
		name := ""
		if a != nil {
			name = a.Name
		}
		return nil, newError(CodeInvalidConfig, name, "authorize applies to web_server accounts only (client_credentials needs no authorization)", nil)
	}
	if opts.Store == nil {
		return nil, newError(CodeInvalidConfig, a.Name, "authorize needs a persistent token store (configure NATS and "+EnvTokenKey+")", nil)
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = http.DefaultClient
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger.With().Str("component", "auth").Str("account", a.Name).Logger()
	return &Authorizer{acct: a, opts: opts, log: log, state: rand.Text(), verifier: Secret(oauth2.GenerateVerifier()), redirect: a.RedirectURL}, nil
}

// AuthCodeURL is the URL the admin opens: it carries the state, the S256
// code challenge and the scopes (api refresh_token offline_access by
// default), and asks Salesforce to show the login page.
func (z *Authorizer) AuthCodeURL() string {
	return oauthConfig(z.acct, z.redirect).AuthCodeURL(z.state,
		oauth2.S256ChallengeOption(z.verifier.Reveal()), oauth2.SetAuthURLParam("prompt", "login consent"))
}

// RedirectURL is where Salesforce sends the browser back: the account's
// redirect URL, with the port [Authorizer.Listen] bound when that names
// port 0.
func (z *Authorizer) RedirectURL() string { return z.redirect }

// ExchangeRedirectURL completes the flow from the full redirect URL the
// admin pasted (for hosts without a browser). Errors: STATE_MISMATCH,
// AUTHORIZE_DENIED, AUTH_FAILED (code refused, e.g. expired or PKCE
// mismatch), AUTH_UNAVAILABLE.
func (z *Authorizer) ExchangeRedirectURL(ctx context.Context, pasted string) (*Result, error) {
	u, err := url.Parse(strings.TrimSpace(pasted))
	if err != nil {
		return nil, newError(CodeAuthorizeDenied, z.acct.Name, "the pasted text is not a URL; paste the whole address the browser was redirected to", nil)
	}
	return z.exchangeQuery(ctx, u.Query())
}

func (z *Authorizer) exchangeQuery(ctx context.Context, q url.Values) (*Result, error) {
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(z.state)) != 1 {
		z.log.Warn().Msg("authorization callback with a wrong state ignored")
		return nil, newError(CodeStateMismatch, z.acct.Name, "the redirect's state does not match this authorization (stale or forged redirect); start `sfblocks authorize` again", nil)
	}
	if e := q.Get("error"); e != "" {
		return nil, newError(CodeAuthorizeDenied, z.acct.Name, fmt.Sprintf("Salesforce answered %s: %s", e, q.Get("error_description")), nil)
	}
	code := Secret(q.Get("code"))
	if code.IsZero() {
		return nil, newError(CodeAuthorizeDenied, z.acct.Name, "the redirect carries no authorization code", nil)
	}
	return z.exchange(ctx, code)
}

func (z *Authorizer) exchange(ctx context.Context, code Secret) (*Result, error) {
	start := z.opts.Now()
	ctx = context.WithValue(ctx, oauth2.HTTPClient, z.opts.HTTPClient)
	var opts []oauth2.AuthCodeOption
	if !z.verifier.IsZero() {
		opts = append(opts, oauth2.VerifierOption(z.verifier.Reveal()))
	}
	tok, err := oauthConfig(z.acct, z.redirect).Exchange(ctx, code.Reveal(), opts...)
	if err != nil {
		e := classify(z.acct, err)
		if e.Code == CodeAuthFailed {
			e.Message = "Salesforce refused the authorization code (expired, already used, or PKCE verifier mismatch); run `sfblocks authorize --account " + z.acct.Name + "` again, and check the consumer key/secret"
		}
		z.log.Warn().Err(e).Msg("authorization code exchange failed")
		return nil, e
	}
	res := resultFromToken(tok, "", z.opts.Now())
	if res.rec.RefreshToken.IsZero() {
		return nil, newError(CodeAuthFailed, z.acct.Name, "Salesforce issued no refresh token; add the refresh_token (and offline_access) scope to the app and to scopes, then authorize again", nil)
	}
	// A new authorization: a refresh that started from the old one must
	// not overwrite it (see [Record.AuthID]).
	res.rec.AuthID = rand.Text()[:16]
	if _, err := z.opts.Store.Put(ctx, z.acct.Name, &res.rec); err != nil {
		return nil, err
	}
	z.log.Info().Str("grant_type", "authorization_code").Dur("duration", z.opts.Now().Sub(start)).
		Str("instance_url", res.rec.InstanceURL).Msg("account authorized; refresh token stored")
	return &Result{Account: z.acct.Name, InstanceURL: res.rec.InstanceURL, ID: res.rec.ID, Scope: res.rec.Scope, IssuedAt: res.rec.IssuedAt}, nil
}

// Listen binds the redirect URL's host and port for
// [Authorizer.ServeCallback]. When the redirect URL names port 0 the
// system picks a free port, and from then on the authorizer's redirect URL
// ([Authorizer.RedirectURL], the one in [Authorizer.AuthCodeURL] and in the
// code exchange) carries the port bound: call Listen before handing out
// AuthCodeURL. Port 0 suits tests and the simulator only; Salesforce
// accepts only the callback URL registered on the app.
func (z *Authorizer) Listen() (net.Listener, error) {
	ru, err := url.Parse(z.redirect)
	if err != nil {
		return nil, newError(CodeInvalidConfig, z.acct.Name, "redirect_url is not a URL", err)
	}
	ln, err := net.Listen("tcp", ru.Host)
	if err != nil {
		return nil, newError(CodeInvalidConfig, z.acct.Name, "cannot listen on the redirect URL's address "+ru.Host+" (in use? or use ExchangeRedirectURL with the pasted URL)", err)
	}
	if ru.Port() == "0" {
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		ru.Host = net.JoinHostPort(ru.Hostname(), port)
		z.redirect = ru.String()
	}
	return ln, nil
}

// ServeCallback listens on the redirect URL's host and port (ln nil; see
// [Authorizer.Listen]) or on ln, serves the redirect URL's path until one
// callback with the right state completes the exchange, and returns.
// Callbacks with a wrong state are answered 400 and ignored (a stray
// request cannot end the flow). ctx ends the wait.
func (z *Authorizer) ServeCallback(ctx context.Context, ln net.Listener) (*Result, error) {
	ru, err := url.Parse(z.redirect)
	if err != nil {
		return nil, newError(CodeInvalidConfig, z.acct.Name, "redirect_url is not a URL", err)
	}
	if ln == nil {
		if ln, err = z.Listen(); err != nil {
			return nil, err
		}
	}
	type outcome struct {
		res *Result
		err error
	}
	done := make(chan outcome, 1)
	path := ru.Path
	if path == "" {
		path = "/"
	}
	mux := http.NewServeMux()
	mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		res, err := z.exchangeQuery(r.Context(), r.URL.Query())
		if errors.Is(err, ErrStateMismatch) {
			http.Error(w, "state mismatch: this is not the authorization in progress", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, "<p>Authorization failed: %s</p>", html.EscapeString(err.Error()))
		} else {
			fmt.Fprintf(w, "<p>Account %s authorized. You can close this window.</p>", html.EscapeString(z.acct.Name))
		}
		select {
		case done <- outcome{res, err}:
		default:
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	z.log.Debug().Str("listen", ln.Addr().String()).Msg("waiting for the authorization callback")
	select {
	case o := <-done:
		return o.res, o.err
	case <-ctx.Done():
		return nil, newError(CodeAuthorizeDenied, z.acct.Name, "no authorization callback arrived in time", ctx.Err())
	}
}
