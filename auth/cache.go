package auth

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"
)

// Defaults of [CacheOptions].
const (
	DefaultRefreshTimeout = 60 * time.Second
	DefaultMaxAttempts    = 4
	DefaultRetryBackoff   = 250 * time.Millisecond
)

// CacheOptions configures [NewCache]. The zero value works: memory store,
// http.DefaultClient, no logging.
type CacheOptions struct {
	// Store holds tokens between refreshes and arbitrates which worker
	// refreshes. Defaults to a NewMemoryStore (this process only).
	Store Store
	// HTTPClient calls the token endpoint. Defaults to http.DefaultClient.
	HTTPClient *http.Client
	// HTTPClientFor, when set, returns the client for one account's token
	// requests, so that they pass that account's circuit breaker (see
	// blocks/salesforce/breaker). A nil result falls back to HTTPClient.
	// Defaults to nil: every account uses HTTPClient.
	HTTPClientFor func(account string) *http.Client
	// Logger receives refreshes at info and details at debug; never a
	// secret. The zero value logs nothing.
	Logger zerolog.Logger
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
	// RefreshTimeout bounds one fetch (waiting for the lease, the token
	// requests and their retries). Defaults to DefaultRefreshTimeout (60 s).
	RefreshTimeout time.Duration
	// MaxAttempts bounds token requests per refresh on transient failures
	// (5xx, network, "already being processed"). Defaults to 4.
	MaxAttempts int
	// RetryBackoff is the first retry delay, doubled each attempt, with
	// jitter. Defaults to 250 ms.
	RetryBackoff time.Duration
}

// Cache hands out one access token per account to every goroutine of the
// process and, through a shared [Store], to every worker of the fleet. A
// token is used until Salesforce rejects it ([TokenSource.Invalidate]) or,
// with an account SessionTimeout, until 90% of that timeout has passed.
// Safe for concurrent use.
type Cache struct {
	cfg   *Config
	store Store
	hc    *http.Client
	log   zerolog.Logger
	now   func() time.Time
	opts  CacheOptions
	sf    singleflight.Group

	mu    sync.Mutex
	state map[string]*acctState
}

// acctState is the process-local view of one account.
type acctState struct {
	tok     *oauth2.Token // current token, nil before the first fetch
	issued  time.Time
	invalid bool // tok was rejected by Salesforce
	// lastErr is the code of the last fetch's error, "" after a success.
	lastErr string
	// failFP/failErr remember a final failure so no retry loop follows:
	// the same credential is not presented again.
	failFP  string
	failErr *Error
}

// NewCache returns a Cache over cfg's accounts. cfg must have passed
// Validate (LoadConfig does this).
func NewCache(cfg *Config, opts CacheOptions) (*Cache, error) {
	if cfg == nil || len(cfg.Accounts) == 0 {
		return nil, newError(CodeInvalidConfig, "", "NewCache needs a Config with at least one account (use LoadConfig)", nil)
	}
	if opts.Store == nil {
		opts.Store = NewMemoryStore()
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = http.DefaultClient
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RefreshTimeout <= 0 {
		opts.RefreshTimeout = DefaultRefreshTimeout
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.RetryBackoff <= 0 {
		opts.RetryBackoff = DefaultRetryBackoff
	}
	log := opts.Logger.With().Str("component", "auth").Logger()
	return &Cache{cfg: cfg, store: opts.Store, hc: opts.HTTPClient, log: log, now: opts.Now, opts: opts, state: map[string]*acctState{}}, nil
}

// Config returns the accounts the cache serves.
func (c *Cache) Config() *Config { return c.cfg }

// Source returns the token source of the account called name ("" for the
// default account). Fails with UNKNOWN_ACCOUNT.
func (c *Cache) Source(name string) (*TokenSource, error) {
	a, err := c.cfg.Account(name)
	if err != nil {
		return nil, err
	}
	return &TokenSource{c: c, acct: a}, nil
}

// TokenSource is one account's view of a [Cache]. It satisfies the REST
// client's TokenSource and TokenInvalidator interfaces. Safe for
// concurrent use.
type TokenSource struct {
	c    *Cache
	acct *Account
}

// Account returns the account this source serves.
func (s *TokenSource) Account() *Account { return s.acct }

// Token returns the account's current access token; tok.Extra
// ("instance_url") is the org's instance URL. Concurrent callers share one
// fetch; a fetch takes the token from the store or, if it is missing,
// rejected or (with a session timeout) old, refreshes it under the store's
// lease. ctx bounds only this caller's wait. Errors: AUTH_FAILED and
// NOT_AUTHORIZED (final), AUTH_UNAVAILABLE (transient), TOKEN_KEY_MISMATCH.
func (s *TokenSource) Token(ctx context.Context) (*oauth2.Token, error) {
	return s.c.token(ctx, s.acct)
}

// TokenState is what a worker knows of an account's token, for status
// displays; it holds no secret.
type TokenState struct {
	// State is "none" (no token fetched yet), "valid", "rejected" (Salesforce
	// refused the current token; the next Token refreshes) or "failed" (the
	// last fetch failed: see ErrorCode).
	State string `json:"state"`
	// IssuedAt is when the current token was issued, zero without one.
	IssuedAt time.Time `json:"issued_at,omitzero"`
	// ErrorCode is the code of the last fetch's error (AUTH_FAILED,
	// NOT_AUTHORIZED, AUTH_UNAVAILABLE, ...), "" after a success.
	ErrorCode string `json:"error_code,omitempty"`
}

// State reports the account's token state in this process without any
// network call.
func (s *TokenSource) State() TokenState {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.st(s.acct.Name)
	out := TokenState{State: "none", IssuedAt: st.issued, ErrorCode: st.lastErr}
	switch {
	case st.lastErr != "":
		out.State = "failed"
	case st.tok != nil && st.invalid:
		out.State = "rejected"
	case st.tok != nil:
		out.State = "valid"
	}
	return out
}

// Invalidate marks failed as rejected by Salesforce (401
// INVALID_SESSION_ID) so the next Token fetches a fresh one. It does
// nothing when failed is not the current token, so a late 401 for an old
// token never discards the newer one another request already fetched.
func (s *TokenSource) Invalidate(failed *oauth2.Token) {
	s.c.invalidate(s.acct, failed)
}

func (c *Cache) st(name string) *acctState {
	st, ok := c.state[name]
	if !ok {
		st = &acctState{}
		c.state[name] = st
	}
	return st
}

func (c *Cache) invalidate(a *Account, failed *oauth2.Token) {
	if failed == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.st(a.Name)
	if st.tok != nil && !st.invalid && st.tok.AccessToken == failed.AccessToken {
		st.invalid = true
		c.log.Debug().Str("account", a.Name).Msg("access token rejected by Salesforce; next Token refreshes")
	}
}

// fresh reports whether a token issued at issued is still within 90% of
// the account's session timeout (always, without one).
func (c *Cache) fresh(a *Account, issued time.Time) bool {
	if a.SessionTimeout <= 0 {
		return true
	}
	return c.now().Before(issued.Add(a.SessionTimeout * 9 / 10))
}

func (c *Cache) token(ctx context.Context, a *Account) (*oauth2.Token, error) {
	c.mu.Lock()
	st := c.st(a.Name)
	if st.tok != nil && !st.invalid && c.fresh(a, st.issued) {
		t := st.tok
		c.mu.Unlock()
		return t, nil
	}
	c.mu.Unlock()
	// The fetch runs detached from any one caller's context: callers that
	// give up leave it running for the others.
	ch := c.sf.DoChan(a.Name, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.RefreshTimeout)
		defer cancel()
		return c.fetch(fctx, a)
	})
	select {
	case r := <-ch:
		code := CodeOf(r.Err)
		if r.Err != nil && code == "" {
			code = CodeUnavailable
		}
		c.mu.Lock()
		st.lastErr = code
		c.mu.Unlock()
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*oauth2.Token), nil
	case <-ctx.Done():
		return nil, newError(CodeUnavailable, a.Name, "gave up waiting for a token", ctx.Err())
	}
}

// credential is what the next token request would present, for
// recognising one Salesforce already refused.
func credential(a *Account, rec *Record) Secret {
	if a.Flow == FlowClientCredentials {
		return Secret(a.ClientID + "\x00" + a.ClientSecret.Reveal())
	}
	if rec != nil && !rec.RefreshToken.IsZero() {
		return rec.RefreshToken
	}
	return a.RefreshToken
}

// fetch gets a usable token: the store's if it is not the rejected one
// (and fresh), else one refresh under the lease.
func (c *Cache) fetch(ctx context.Context, a *Account) (*oauth2.Token, error) {
	c.mu.Lock()
	st := c.st(a.Name)
	var bad string // the access token that must not be handed out again
	if st.tok != nil && (st.invalid || !c.fresh(a, st.issued)) {
		bad = st.tok.AccessToken
	}
	c.mu.Unlock()

	usable := func(rec *Record) bool {
		return rec != nil && !rec.AccessToken.IsZero() && rec.AccessToken.Reveal() != bad && c.fresh(a, rec.IssuedAt)
	}

	rec, _, err := c.store.Load(ctx, a.Name)
	if err != nil {
		return nil, err
	}
	if usable(rec) {
		c.log.Debug().Str("account", a.Name).Msg("using token from the store")
		return c.adopt(a, rec), nil
	}
	if err := c.refused(a, rec); err != nil {
		return nil, err
	}

	wait := c.now()
	lease, err := c.store.Lease(ctx, a.Name)
	if err != nil {
		return nil, err
	}
	defer lease.Release(context.WithoutCancel(ctx))
	c.log.Debug().Str("account", a.Name).Dur("waited", c.now().Sub(wait)).Msg("refresh lease acquired")

	// Re-read under the lease: the previous holder may have just stored
	// the token we need.
	rec, rev, err := c.store.Load(ctx, a.Name)
	if err != nil {
		return nil, err
	}
	if usable(rec) {
		c.log.Debug().Str("account", a.Name).Msg("another worker refreshed; using its token")
		return c.adopt(a, rec), nil
	}
	if err := c.refused(a, rec); err != nil {
		return nil, err
	}
	cred := credential(a, rec)
	if a.Flow == FlowWebServer && cred.IsZero() {
		return nil, newError(CodeNotAuthorized, a.Name, "no refresh token stored for this account; run `sfblocks authorize --account "+a.Name+"`", nil)
	}

	res, err := c.requestWithRetry(ctx, a, lease, cred)
	if err != nil {
		var ae *Error
		if errors.As(err, &ae) && ae.Code == CodeAuthFailed {
			c.markRefused(ctx, a, rec, rev, cred, ae)
		}
		return nil, err
	}
	nrec := res.rec
	if _, err := c.store.Save(ctx, a.Name, &nrec, rev); err != nil {
		// Only a worker that took over our expired lease writes meanwhile.
		// With rotation the new refresh token is then lost, so say so.
		c.log.Error().Str("account", a.Name).Bool("rotated", res.rotated).Err(err).Msg("could not store the refreshed token")
		return nil, newError(CodeUnavailable, a.Name, "refreshed token could not be stored (refresh lease lost?)", err)
	}
	return c.adopt(a, &nrec), nil
}

// refused returns the remembered AUTH_FAILED if the credential the next
// request would present is one Salesforce already refused (here or, per
// the store's record, in another worker).
func (c *Cache) refused(a *Account, rec *Record) error {
	fp := fingerprint(credential(a, rec).Reveal())
	if fp == "" {
		return nil
	}
	c.mu.Lock()
	st := c.st(a.Name)
	if st.failFP == fp && st.failErr != nil {
		e := st.failErr
		c.mu.Unlock()
		return e
	}
	c.mu.Unlock()
	if rec != nil && rec.FailedCredential == fp {
		return newError(CodeAuthFailed, a.Name, rec.FailedMessage, nil)
	}
	return nil
}

func (c *Cache) markRefused(ctx context.Context, a *Account, rec *Record, rev uint64, cred Secret, e *Error) {
	fp := fingerprint(cred.Reveal())
	c.mu.Lock()
	st := c.st(a.Name)
	st.failFP, st.failErr = fp, e
	c.mu.Unlock()
	var nrec Record
	if rec != nil {
		nrec = *rec
	}
	nrec.FailedCredential, nrec.FailedMessage = fp, e.Message
	if _, err := c.store.Save(ctx, a.Name, &nrec, rev); err != nil {
		c.log.Debug().Str("account", a.Name).Err(err).Msg("could not record the refused credential in the store")
	}
}

func (c *Cache) requestWithRetry(ctx context.Context, a *Account, lease Lease, cred Secret) (*grantResult, error) {
	grant := "refresh_token"
	if a.Flow == FlowClientCredentials {
		grant = "client_credentials"
	}
	backoff := c.opts.RetryBackoff
	var last error
	for attempt := 1; attempt <= c.opts.MaxAttempts; attempt++ {
		if attempt > 1 {
			d := backoff/2 + rand.N(backoff/2+1)
			c.log.Debug().Str("account", a.Name).Int("attempt", attempt).Dur("backoff", d).Err(last).Msg("retrying token request")
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil, newError(CodeUnavailable, a.Name, "token refresh timed out", last)
			}
			backoff *= 2
			if err := lease.Renew(ctx); err != nil {
				return nil, newError(CodeUnavailable, a.Name, "lost the refresh lease while retrying", err)
			}
		}
		start := c.now()
		res, err := requestToken(ctx, c.httpClient(a.Name), a, cred, c.now())
		dur := c.now().Sub(start)
		if err == nil {
			c.log.Info().Str("account", a.Name).Str("grant_type", grant).Dur("duration", dur).
				Bool("refresh_token_rotated", res.rotated).Str("instance_url", res.rec.InstanceURL).Msg("access token refreshed")
			return res, nil
		}
		last = err
		var ae *Error
		if errors.As(err, &ae) && ae.Transient() && failFast(err) {
			// No request was sent and none would be before the breaker
			// probes again: retrying now only makes the caller wait.
			c.log.Debug().Str("account", a.Name).Str("grant_type", grant).Err(err).Msg("token request not sent: circuit breaker open")
			return nil, err
		}
		if !errors.As(err, &ae) || !ae.Transient() {
			c.log.Warn().Str("account", a.Name).Str("grant_type", grant).Dur("duration", dur).Err(err).Msg("token request refused")
			return nil, err
		}
		c.log.Debug().Str("account", a.Name).Str("grant_type", grant).Int("attempt", attempt).Err(err).Msg("token request failed, transient")
	}
	return nil, last
}

// httpClient returns the client for a's token requests.
func (c *Cache) httpClient(account string) *http.Client {
	if c.opts.HTTPClientFor != nil {
		if hc := c.opts.HTTPClientFor(account); hc != nil {
			return hc
		}
	}
	return c.hc
}

// failFast reports whether err says the request was refused locally by an
// open circuit breaker (the breaker's error has a BreakerOpen method), so
// that the retry loop gives up at once instead of backing off against it.
func failFast(err error) bool {
	var open interface{ BreakerOpen() bool }
	return errors.As(err, &open) && open.BreakerOpen()
}

// adopt makes rec the process's current token.
func (c *Cache) adopt(a *Account, rec *Record) *oauth2.Token {
	t := &oauth2.Token{AccessToken: rec.AccessToken.Reveal(), TokenType: "Bearer"}
	if a.SessionTimeout > 0 {
		t.Expiry = rec.IssuedAt.Add(a.SessionTimeout)
	}
	t = t.WithExtra(map[string]any{"instance_url": rec.InstanceURL, "id": rec.ID, "scope": rec.Scope})
	c.mu.Lock()
	st := c.st(a.Name)
	st.tok, st.issued, st.invalid = t, rec.IssuedAt, false
	c.mu.Unlock()
	return t
}
