package auth

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"
)

// Defaults of [CacheOptions].
const (
	DefaultRefreshTimeout    = 60 * time.Second
	DefaultRequestTimeout    = 20 * time.Second
	DefaultMaxAttempts       = 4
	DefaultRetryBackoff      = 250 * time.Millisecond
	DefaultRefusalBackoff    = 30 * time.Second
	DefaultMaxRefusalBackoff = 5 * time.Minute
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
	// RequestTimeout bounds one token request. Defaults to
	// DefaultRequestTimeout (20 s), shorter than the default lease TTL; a
	// request is also given up as soon as the refresh lease can no longer
	// be trusted ([Lease.Lost]), whichever comes first.
	RequestTimeout time.Duration
	// MaxAttempts bounds token requests per refresh on transient failures
	// (5xx, network, "already being processed"). Defaults to 4.
	MaxAttempts int
	// RetryBackoff is the first retry delay, doubled each attempt, with
	// jitter. Defaults to 250 ms.
	RetryBackoff time.Duration
	// RefusalBackoff is how long the fleet waits after a refusal that may
	// heal by itself (AUTH_RETRYING: client credentials not allowed yet, a
	// 403 from something in between) before it sends the next token
	// request; it doubles with each further refusal up to
	// MaxRefusalBackoff. Defaults to DefaultRefusalBackoff (30 s) and
	// DefaultMaxRefusalBackoff (5 min).
	RefusalBackoff    time.Duration
	MaxRefusalBackoff time.Duration
	// TracerProvider receives the spans of token waits, fetches, lease
	// waits and token requests (see tracing.go). Defaults to
	// otel.GetTracerProvider(), which records nothing unless the program
	// installed a provider.
	TracerProvider trace.TracerProvider
}

// Cache hands out one access token per account to every goroutine of the
// process and, through a shared [Store], to every worker of the fleet. A
// token is used until Salesforce rejects it ([TokenSource.Invalidate]) or,
// with an account SessionTimeout, until 90% of that timeout has passed.
// Safe for concurrent use.
type Cache struct {
	cfg    *Config
	store  Store
	hc     *http.Client
	log    zerolog.Logger
	now    func() time.Time
	opts   CacheOptions
	sf     singleflight.Group
	tracer trace.Tracer

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
	// retryAt is when the fleet next tries a credential whose refusal may
	// heal (AUTH_RETRYING); zero otherwise.
	retryAt time.Time
	// unsaved is a refusal the store could not record, at the revision
	// unsavedRev it was decided on: it stands in for the store's mark
	// until the store's record changes.
	unsaved    *Record
	unsavedRev uint64
	// seenFP/seenRefusals/seenAt: when this process first saw refusal
	// number seenRefusals of the credential seenFP. A refusal's backoff
	// runs from the refusing worker's clock, but never past this process's
	// first sight plus the backoff, whatever that clock said.
	seenFP       string
	seenRefusals int
	seenAt       time.Time
	// keyErr is the TOKEN_KEY_MISMATCH of the last read of the account's
	// record, nil after a read that opened it (or found none); keyLogged
	// says it was logged.
	keyErr    *Error
	keyLogged bool
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
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = DefaultRequestTimeout
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.RetryBackoff <= 0 {
		opts.RetryBackoff = DefaultRetryBackoff
	}
	if opts.RefusalBackoff <= 0 {
		opts.RefusalBackoff = DefaultRefusalBackoff
	}
	if opts.MaxRefusalBackoff <= 0 {
		opts.MaxRefusalBackoff = DefaultMaxRefusalBackoff
	}
	opts.MaxRefusalBackoff = max(opts.MaxRefusalBackoff, opts.RefusalBackoff)
	log := opts.Logger.With().Str("component", "auth").Logger()
	c := &Cache{cfg: cfg, store: opts.Store, hc: opts.HTTPClient, log: log, now: opts.Now, opts: opts, state: map[string]*acctState{}}
	c.tracer = c.tracerFor()
	return c, nil
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

// CheckStore reads every account's record from the store once, without
// calling Salesforce, so that a worker knows at start whether it can open
// the fleet's tokens; a record sealed with a previous key is re-sealed on
// the way ([KVStore.Load]). When some cannot be opened (TOKEN_KEY_MISMATCH)
// it logs one error naming the accounts and the fix, and returns it; from
// then on [Cache.Ready] fails until the records open. Other read failures
// (the store unreachable) are returned but leave readiness alone: the next
// job reads again. ctx bounds the whole check.
func (c *Cache) CheckStore(ctx context.Context) error {
	var names []string
	var keyErr, other error
	for _, a := range c.cfg.Accounts {
		_, _, err := c.load(ctx, a, true)
		switch {
		case CodeOf(err) == CodeTokenKey:
			names = append(names, a.Name)
			keyErr = err
		case err != nil && other == nil:
			other = err
		}
	}
	if keyErr == nil {
		return other
	}
	c.mu.Lock()
	for _, n := range names {
		c.st(n).keyLogged = true
	}
	c.mu.Unlock()
	c.log.Error().Strs("accounts", names).Err(keyErr).
		Msg("this worker cannot open the fleet's stored tokens with its key; jobs for these accounts fail with AUTH_FAILED, and /readyz says not ready, until it has the fleet's key")
	return c.Ready()
}

// Ready returns nil unless the last read of some account's record failed
// with TOKEN_KEY_MISMATCH: this worker's key is not the one the fleet's
// tokens are sealed with. The error names the accounts and the fix; it
// holds no secret. It makes no network call (for /readyz).
func (c *Cache) Ready() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var names []string
	var first *Error
	for _, a := range c.cfg.Accounts {
		if st, ok := c.state[a.Name]; ok && st.keyErr != nil {
			names = append(names, a.Name)
			if first == nil {
				first = st.keyErr
			}
		}
	}
	if first == nil {
		return nil
	}
	return newError(CodeTokenKey, "", fmt.Sprintf("cannot open the stored tokens of %s with this worker's key: %s", strings.Join(names, ", "), first.Message), nil)
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
// NOT_AUTHORIZED (final), AUTH_RETRYING (a refusal that may heal, tried
// again with backoff), AUTH_UNAVAILABLE (transient), TOKEN_KEY_MISMATCH.
func (s *TokenSource) Token(ctx context.Context) (*oauth2.Token, error) {
	return s.c.token(ctx, s.acct)
}

// TokenState is what a worker knows of an account's token, for status
// displays; it holds no secret.
type TokenState struct {
	// State is "none" (no token fetched yet), "valid", "rejected" (Salesforce
	// refused the current token; the next Token refreshes), "retrying"
	// (Salesforce refused the credential in a way that may heal: see
	// RetryAt) or "failed" (the last fetch failed: see ErrorCode).
	State string `json:"state"`
	// IssuedAt is when the current token was issued, zero without one.
	IssuedAt time.Time `json:"issued_at,omitzero"`
	// ErrorCode is the code of the last fetch's error (AUTH_FAILED,
	// NOT_AUTHORIZED, AUTH_RETRYING, AUTH_UNAVAILABLE, TOKEN_KEY_MISMATCH,
	// ...), "" after a success.
	ErrorCode string `json:"error_code,omitempty"`
	// RetryAt is when the fleet sends the next token request for a
	// credential in State "retrying"; zero otherwise.
	RetryAt time.Time `json:"retry_at,omitzero"`
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
	case st.lastErr == CodeAuthRetrying:
		out.State, out.RetryAt = "retrying", st.retryAt
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
	ctx, span := c.tracer.Start(ctx, "sfblocks.token.wait", trace.WithAttributes(accountAttr(a)))
	defer span.End()
	// The fetch runs detached from any one caller's context: callers that
	// give up leave it running for the others. Its span is a child of the
	// first caller's wait.
	ch := c.sf.DoChan(a.Name, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.RefreshTimeout)
		defer cancel()
		fctx, fspan := c.tracer.Start(fctx, "sfblocks.token.fetch", trace.WithAttributes(accountAttr(a)))
		defer fspan.End()
		tok, err := c.fetch(fctx, a)
		failSpan(fspan, err)
		return fetched{tok: tok, sc: fspan.SpanContext(), leader: trace.SpanContextFromContext(ctx).SpanID()}, err
	})
	select {
	case r := <-ch:
		f, _ := r.Val.(fetched)
		if r.Shared && span.IsRecording() && f.sc.IsValid() && f.leader != span.SpanContext().SpanID() {
			span.AddLink(trace.Link{SpanContext: f.sc, Attributes: []attribute.KeyValue{attribute.String("sfblocks.link", "shared_fetch")}})
		}
		if span.IsRecording() {
			span.SetAttributes(attribute.Bool("sfblocks.token.shared", r.Shared))
		}
		failSpan(span, r.Err)
		code := CodeOf(r.Err)
		if r.Err != nil && code == "" {
			code = CodeUnavailable
		}
		c.mu.Lock()
		st.lastErr = code
		if code != CodeAuthRetrying {
			st.retryAt = time.Time{}
		}
		c.mu.Unlock()
		if r.Err != nil {
			return nil, r.Err
		}
		return f.tok, nil
	case <-ctx.Done():
		err := newError(CodeUnavailable, a.Name, "gave up waiting for a token", ctx.Err())
		failSpan(span, err)
		return nil, err
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

// load reads the account's record and notes whether this worker's key
// opens it (for [Cache.Ready]); quiet leaves the logging of a key problem
// to the caller.
func (c *Cache) load(ctx context.Context, a *Account, quiet bool) (*Record, uint64, error) {
	rec, rev, err := c.store.Load(ctx, a.Name)
	var ae *Error
	if err == nil || errors.As(err, &ae) && ae.Code == CodeTokenKey {
		c.noteKey(a, ae, quiet)
	}
	return rec, rev, err
}

// noteKey records the outcome of opening a's record: e is its
// TOKEN_KEY_MISMATCH, nil when it opened. A new problem is logged once at
// error level (unless quiet), its end at info.
func (c *Cache) noteKey(a *Account, e *Error, quiet bool) {
	c.mu.Lock()
	st := c.st(a.Name)
	healed := st.keyErr != nil && e == nil
	report := e != nil && !st.keyLogged && !quiet
	st.keyErr = e
	switch {
	case e != nil:
		st.lastErr = CodeTokenKey
		st.keyLogged = st.keyLogged || report
	default:
		st.keyLogged = false
	}
	c.mu.Unlock()
	switch {
	case report:
		c.log.Error().Str("account", a.Name).Err(e).
			Msg("this worker cannot open the account's stored token with its key; its jobs fail with AUTH_FAILED, and /readyz says not ready, until it has the fleet's key")
	case healed:
		c.log.Info().Str("account", a.Name).Msg("the account's stored token opens with this worker's key again")
	}
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

	rec, rev, err := c.load(ctx, a, false)
	if err != nil {
		return nil, err
	}
	if usable(rec) {
		c.log.Debug().Str("account", a.Name).Msg("using token from the store")
		setOutcome(trace.SpanFromContext(ctx), outcomeStore)
		return c.adopt(a, rec), nil
	}
	if err := c.refused(a, rec, rev); err != nil {
		return nil, err
	}

	wait := c.now()
	// Waiting for the lease is waiting for another worker's refresh, when
	// one holds it: a span of its own.
	lctx, lspan := c.tracer.Start(ctx, "sfblocks.token.lease", trace.WithAttributes(accountAttr(a)))
	lease, err := c.store.Lease(lctx, a.Name)
	failSpan(lspan, err)
	lspan.End()
	if err != nil {
		return nil, err
	}
	held := true // false once a background save owns the lease
	defer func() {
		if held {
			lease.Release(context.WithoutCancel(ctx))
		}
	}()
	c.log.Debug().Str("account", a.Name).Dur("waited", c.now().Sub(wait)).Msg("refresh lease acquired")

	// Re-read under the lease: the previous holder may have just stored
	// the token we need.
	rec, rev, err = c.load(ctx, a, false)
	if err != nil {
		return nil, err
	}
	if usable(rec) {
		c.log.Debug().Str("account", a.Name).Msg("another worker refreshed; using its token")
		setOutcome(trace.SpanFromContext(ctx), outcomeOther)
		return c.adopt(a, rec), nil
	}
	if err := c.refused(a, rec, rev); err != nil {
		return nil, err
	}
	cred := credential(a, rec)
	if a.Flow == FlowWebServer && cred.IsZero() {
		return nil, newError(CodeNotAuthorized, a.Name, "no refresh token stored for this account; run `sfblocks authorize --account "+a.Name+"`", nil)
	}

	res, err := c.requestWithRetry(ctx, a, lease, cred)
	if err != nil {
		var ae *Error
		if errors.As(err, &ae) && (ae.Code == CodeAuthFailed || ae.Code == CodeAuthRetrying) {
			return nil, c.markRefused(ctx, a, rec, rev, cred, ae)
		}
		return nil, err
	}
	nrec := res.rec
	if rec != nil {
		nrec.AuthID, nrec.Generation = rec.AuthID, rec.Generation
	}
	if res.rotated {
		nrec.Generation++
	}
	use, background := c.saveRefreshed(ctx, a, lease, rec, rev, &nrec, res.rotated)
	held = !background
	setOutcome(trace.SpanFromContext(ctx), outcomeRefreshed)
	return c.adopt(a, use), nil
}

// superseded reports whether cur, read after a refresh from base, must not
// be overwritten by that refresh's result: it descends from another
// authorization or holds a later refresh token, or (the refresh rotated
// nothing) it is a fresh access token another worker stored meanwhile.
// A record that differs from base only by a refusal mark or a re-seal is
// not newer: the refresh's result replaces it.
func superseded(base, cur *Record, rotated bool) bool {
	if cur == nil {
		return false
	}
	var b Record
	if base != nil {
		b = *base
	}
	if cur.AuthID != b.AuthID || cur.Generation > b.Generation {
		return true
	}
	return !rotated && cur.FailedCredential == "" && !cur.AccessToken.IsZero() && cur.AccessToken != b.AccessToken
}

// Save retries back off from saveBackoff to maxSaveBackoff.
const (
	saveBackoff    = 50 * time.Millisecond
	maxSaveBackoff = 5 * time.Second
)

// saveRefreshed stores nrec, the result of a refresh from base (read at
// rev), before anyone uses it, and returns the record to use. A revision
// conflict is decided by [superseded]: a newer record stays and is used,
// anything else (a refusal of the token this refresh replaced, a re-seal)
// is overwritten. While the store cannot be written the save is retried
// with backoff; with a rotated refresh token, which only this worker holds,
// it goes on in the background after ctx ends, still holding the lease so
// that no other worker presents the replaced token (background true: the
// caller must not release the lease).
func (c *Cache) saveRefreshed(ctx context.Context, a *Account, lease Lease, base *Record, rev uint64, nrec *Record, rotated bool) (use *Record, background bool) {
	backoff, logged := saveBackoff, false
	for {
		done, use, err := c.saveOnce(ctx, a, base, &rev, nrec, rotated)
		if done {
			if logged {
				c.log.Info().Str("account", a.Name).Msg("refreshed token stored after all")
			}
			return use, false
		}
		if !logged {
			logged = true
			if rotated {
				c.log.Error().Str("account", a.Name).Err(err).
					Msg("could not store the refreshed token; this worker holds the only copy of the account's new refresh token and keeps trying to store it")
			} else {
				c.log.Warn().Str("account", a.Name).Err(err).Msg("could not store the refreshed token; retrying")
			}
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			if !rotated {
				// Nothing is lost: the stored refresh token still works,
				// and the next fetch here or elsewhere refreshes again.
				return nrec, false
			}
			go c.keepSaving(a, lease, base, rev, nrec)
			return nrec, true
		}
		backoff = min(backoff*2, maxSaveBackoff)
	}
}

// saveOnce tries to store nrec at *rev once, following conflicts. done
// reports that nothing is left to do, with the record to use.
func (c *Cache) saveOnce(ctx context.Context, a *Account, base *Record, rev *uint64, nrec *Record, rotated bool) (done bool, use *Record, err error) {
	for range 5 {
		if _, err = c.store.Save(ctx, a.Name, nrec, *rev); err == nil {
			return true, nrec, nil
		}
		if !errors.Is(err, errConflict) {
			return false, nil, err
		}
		cur, crev, lerr := c.store.Load(ctx, a.Name)
		if lerr != nil {
			return false, nil, lerr
		}
		if superseded(base, cur, rotated) {
			c.log.Info().Str("account", a.Name).Bool("refresh_token_rotated", rotated).
				Msg("a newer token was stored while this worker refreshed; keeping it")
			if cur.AccessToken.IsZero() || cur.FailedCredential != "" {
				return true, nrec, nil // ours works; the store's newer credential is for the next refresh
			}
			return true, cur, nil
		}
		// Only a refusal of the token this refresh replaced, or a re-seal,
		// was written meanwhile: ours is newer and replaces it.
		c.log.Debug().Str("account", a.Name).Msg("token record changed while refreshing; storing the refreshed token over it")
		*rev = crev
	}
	return false, nil, err
}

// keepSaving goes on storing a rotated refresh token after its fetch ended,
// holding the lease, until it is stored or a newer one is.
func (c *Cache) keepSaving(a *Account, lease Lease, base *Record, rev uint64, nrec *Record) {
	defer lease.Release(context.Background())
	backoff, lastLog := time.Second, c.now()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), c.opts.RequestTimeout)
		done, _, err := c.saveOnce(ctx, a, base, &rev, nrec, true)
		cancel()
		if done {
			c.log.Info().Str("account", a.Name).Msg("rotated refresh token stored after all")
			return
		}
		if now := c.now(); now.Sub(lastLog) >= time.Minute {
			lastLog = now
			c.log.Error().Str("account", a.Name).Err(err).
				Msg("still cannot store the account's new refresh token; this worker holds the only copy and keeps trying")
		}
		time.Sleep(backoff)
		backoff = min(backoff*2, 30*time.Second)
	}
}

// refusalBackoff is the wait after the n-th consecutive refusal that may
// heal.
func (c *Cache) refusalBackoff(n int) time.Duration {
	d := c.opts.RefusalBackoff
	for i := 1; i < n && d < c.opts.MaxRefusalBackoff; i++ {
		d *= 2
	}
	return min(d, c.opts.MaxRefusalBackoff)
}

// refused returns the error for a credential Salesforce refused, from the
// store's record (or the refusal this process could not store): AUTH_FAILED
// when the refusal is final, AUTH_RETRYING while a refusal that may heal
// waits out its backoff; nil when the next request may be sent.
func (c *Cache) refused(a *Account, rec *Record, rev uint64) error {
	fp := fingerprint(credential(a, rec).Reveal())
	if fp == "" {
		return nil
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.st(a.Name)
	if st.unsaved != nil {
		if st.unsavedRev == rev && st.unsaved.FailedCredential == fp {
			rec = st.unsaved
		} else {
			st.unsaved = nil // the store moved on: it decides
		}
	}
	if rec == nil || rec.FailedCredential != fp {
		return nil
	}
	if rec.Refusals == 0 {
		return newError(CodeAuthFailed, a.Name, rec.FailedMessage, nil)
	}
	at := c.retryAtLocked(st, rec, now)
	if now.Before(at) {
		st.retryAt = at
		return c.retryingError(a, rec, at, nil)
	}
	return nil
}

// retryAtLocked is when the fleet tries a credential again after rec's
// refusal. c.mu is held.
func (c *Cache) retryAtLocked(st *acctState, rec *Record, now time.Time) time.Time {
	if st.seenFP != rec.FailedCredential || st.seenRefusals != rec.Refusals {
		st.seenFP, st.seenRefusals, st.seenAt = rec.FailedCredential, rec.Refusals, now
	}
	b := c.refusalBackoff(rec.Refusals)
	at := rec.FailedAt.Add(b)
	if limit := st.seenAt.Add(b); at.After(limit) {
		at = limit
	}
	return at
}

func (c *Cache) retryingError(a *Account, rec *Record, at time.Time, cause error) *Error {
	return newError(CodeAuthRetrying, a.Name, fmt.Sprintf("%s (refusal %d; the fleet sends the next token request at %s; to send it at once, run `sfblocks accounts reset %s`)",
		rec.FailedMessage, rec.Refusals, at.UTC().Format(time.RFC3339), a.Name), cause)
}

// markRefused records in the store that Salesforce refused cred, the
// credential of base (read at rev), and returns the error for the caller.
// The mark is written revision-checked and never over a record newer than
// base: if the credential or the token changed meanwhile, the refusal is
// old news and is dropped. A temporary refusal (AUTH_RETRYING) counts up
// and starts its backoff; a final one (AUTH_FAILED) stays until a new
// credential, a new authorization or `sfblocks accounts reset` replaces it.
func (c *Cache) markRefused(ctx context.Context, a *Account, base *Record, rev uint64, cred Secret, e *Error) *Error {
	fp := fingerprint(cred.Reveal())
	temporary := e.Code == CodeAuthRetrying
	now := c.now()
	cur := base
	for range 3 {
		var nrec Record
		if cur != nil {
			nrec = *cur
		}
		n := 0
		if temporary {
			n = 1
			if cur != nil && cur.FailedCredential == fp {
				n = cur.Refusals + 1
			}
		}
		nrec.FailedCredential, nrec.FailedMessage, nrec.Refusals, nrec.FailedAt = fp, e.Message, n, now
		nrev, err := c.store.Save(ctx, a.Name, &nrec, rev)
		if err == nil {
			return c.noteRefusal(a, &nrec, nrev, false, e)
		}
		if !errors.Is(err, errConflict) {
			c.log.Debug().Str("account", a.Name).Err(err).Msg("could not record the refused credential in the store; remembering it here")
			return c.noteRefusal(a, &nrec, rev, true, e)
		}
		next, nextRev, lerr := c.store.Load(ctx, a.Name)
		if lerr != nil {
			return c.noteRefusal(a, &nrec, rev, true, e)
		}
		if fingerprint(credential(a, next).Reveal()) != fp || superseded(cur, next, false) {
			c.log.Debug().Str("account", a.Name).Msg("a newer token was stored meanwhile; the refusal of the older one is not recorded")
			return e
		}
		cur, rev = next, nextRev
	}
	return e
}

// noteRefusal remembers the refusal rec records (at rev; unsaved when the
// store does not hold it) and returns the caller's error.
func (c *Cache) noteRefusal(a *Account, rec *Record, rev uint64, unsaved bool, e *Error) *Error {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.st(a.Name)
	st.unsaved = nil
	if unsaved {
		cp := *rec
		st.unsaved, st.unsavedRev = &cp, rev
	}
	if rec.Refusals == 0 {
		return e
	}
	at := c.retryAtLocked(st, rec, rec.FailedAt)
	st.retryAt = at
	c.log.Warn().Str("account", a.Name).Int("refusals", rec.Refusals).Time("retry_at", at).Err(e).
		Msg("Salesforce refused the credential, perhaps only for now; the fleet tries again with backoff")
	return c.retryingError(a, rec, at, e.Err)
}

// errLeaseLost is why a token request was given up: the lease could no
// longer be trusted, and another worker may take it over.
var errLeaseLost = errors.New("the refresh lease could not be renewed in time")

// requestContext bounds one token request by RequestTimeout and by the
// lease: it ends as soon as the lease is lost.
func (c *Cache) requestContext(ctx context.Context, lease Lease) (context.Context, context.CancelFunc) {
	lctx, cancelLost := context.WithCancelCause(ctx)
	rctx, cancel := context.WithTimeout(lctx, c.opts.RequestTimeout)
	if lost := lease.Lost(); lost != nil {
		go func() {
			select {
			case <-lost:
				cancelLost(errLeaseLost)
			case <-rctx.Done():
			}
		}()
	}
	return rctx, func() { cancel(); cancelLost(nil) }
}

// leaseLost reports whether the lease was lost.
func leaseLost(lease Lease) bool {
	select {
	case <-lease.Lost():
		return true
	default:
		return false
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
			case <-lease.Lost():
				t.Stop()
				return nil, newError(CodeUnavailable, a.Name, "lost the refresh lease while retrying", last)
			case <-ctx.Done():
				t.Stop()
				return nil, newError(CodeUnavailable, a.Name, "token refresh timed out", last)
			}
			backoff *= 2
		}
		start := c.now()
		sctx, span := c.startRequest(ctx, a, grant, attempt)
		rctx, cancel := c.requestContext(sctx, lease)
		res, err := requestToken(rctx, c.httpClient(a.Name), a, cred, c.now())
		cancel()
		endRequest(span, err)
		dur := c.now().Sub(start)
		if err == nil {
			c.log.Info().Str("account", a.Name).Str("grant_type", grant).Dur("duration", dur).
				Bool("refresh_token_rotated", res.rotated).Str("instance_url", res.rec.InstanceURL).Msg("access token refreshed")
			return res, nil
		}
		if leaseLost(lease) {
			// Another worker may hold the lease by now: sending again
			// could present a token it is already refreshing.
			c.log.Warn().Str("account", a.Name).Str("grant_type", grant).Dur("duration", dur).
				Msg("token request given up: the refresh lease could not be renewed in time")
			return nil, newError(CodeUnavailable, a.Name, "token request given up: the refresh lease could not be renewed in time", errLeaseLost)
		}
		last = err
		var ae *Error
		if errors.As(err, &ae) && ae.Transient() && failFast(err) {
			// No request was sent and none would be before the breaker
			// probes again: retrying now only makes the caller wait.
			c.log.Debug().Str("account", a.Name).Str("grant_type", grant).Err(err).Msg("token request not sent: circuit breaker open")
			return nil, err
		}
		if !errors.As(err, &ae) || !ae.Transient() || ae.Code == CodeAuthRetrying {
			// Refused: final, or to be tried again only after a backoff
			// of minutes, never within this fetch.
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

// Refusal is the mark of a credential Salesforce refused, as
// [ClearRefusal] found it; it holds no secret.
type Refusal struct {
	// Final is true for a refusal that stays until an operator acts
	// (AUTH_FAILED), false for one the fleet retries with backoff
	// (AUTH_RETRYING).
	Final bool
	// Refusals counts consecutive refusals of a retried credential.
	Refusals int
	// Message is why, as jobs were told.
	Message string
	// At is when the last refusal was answered.
	At time.Time
}

// ClearRefusal removes the mark of a refused credential from account's
// record, so that the next token request of any worker presents the
// credential again: after an operator fixed what made Salesforce refuse
// it, or to end a refusal's backoff now. The stored tokens stay. It returns
// the mark it removed, nil when there was none. The write is
// revision-checked, so a token stored meanwhile is never overwritten.
func ClearRefusal(ctx context.Context, store Store, account string) (*Refusal, error) {
	for range 5 {
		rec, rev, err := store.Load(ctx, account)
		if err != nil {
			return nil, err
		}
		if rec == nil || rec.FailedCredential == "" {
			return nil, nil
		}
		out := &Refusal{Final: rec.Refusals == 0, Refusals: rec.Refusals, Message: rec.FailedMessage, At: rec.FailedAt}
		nrec := *rec
		nrec.clearRefusal()
		_, err = store.Save(ctx, account, &nrec, rev)
		if err == nil {
			return out, nil
		}
		if !errors.Is(err, errConflict) {
			return nil, err
		}
	}
	return nil, newError(CodeUnavailable, account, "the account's token record kept changing while it was being reset; run the reset again", nil)
}
