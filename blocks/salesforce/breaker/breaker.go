package breaker

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/sony/gobreaker/v2"
)

// Defaults of [Settings].
const (
	DefaultConsecutiveFailures = 5
	DefaultFailureRatio        = 0.5
	DefaultMinRequests         = 20
	DefaultWindow              = 10 * time.Second
	DefaultOpenTimeout         = 30 * time.Second
	DefaultHalfOpenProbes      = 3
	DefaultSlowCall            = 5 * time.Second
)

// windowBuckets is how many buckets the rolling window is cut into: counts
// age out a tenth of the window at a time rather than all at once.
const windowBuckets = 10

// maxProbeWait bounds the retry time given to calls refused while the
// half-open probes are in flight: the probes' outcome is usually known
// within a call's duration.
const maxProbeWait = time.Second

// Settings configures a [Set]. The zero value works: every field has a
// default, and without Registerer no metrics are exported.
type Settings struct {
	// ConsecutiveFailures opens the breaker after that many failures in a
	// row. Defaults to 5.
	ConsecutiveFailures int
	// FailureRatio opens the breaker when at least that fraction of the
	// counted calls in Window failed, once there are MinRequests of them.
	// In (0, 1]. Defaults to 0.5.
	FailureRatio float64
	// MinRequests is how many counted calls (successes and failures) Window
	// must hold before FailureRatio applies. Defaults to 20.
	MinRequests int
	// Window is the rolling window over which FailureRatio is computed.
	// Defaults to 10 s.
	Window time.Duration
	// OpenTimeout is how long the breaker stays open before it lets probes
	// through. Defaults to 30 s.
	OpenTimeout time.Duration
	// HalfOpenProbes is how many calls pass while half-open; that many
	// successes in a row close the breaker. Defaults to 3.
	HalfOpenProbes int
	// SlowCall is how long a call must have waited for Salesforce before
	// the caller's deadline cut it short for that to count as a failure: a
	// job that gives itself 50 ms against an org answering in 100 ms is
	// the job's choice, not Salesforce being unwell, while a call that
	// hung for seconds is. Defaults to 5 s.
	SlowCall time.Duration
	// Logger receives one line per state change (warn when opening, info
	// otherwise). The zero value logs nothing.
	Logger zerolog.Logger
	// Registerer, when set, gets the breaker metrics (see the package
	// documentation). Defaults to none.
	Registerer prometheus.Registerer
	// OnStateChange, when set, is called on every state change, after the
	// log line and the metrics. It runs while the breaker holds its lock:
	// it must be fast and must not call the breaker's methods.
	OnStateChange func(account string, from, to State)
}

// withDefaults returns s with defaults filled in, or an error naming the
// field that is out of range.
func (s Settings) withDefaults() (Settings, error) {
	var errs []error
	if s.ConsecutiveFailures < 0 || s.MinRequests < 0 || s.HalfOpenProbes < 0 {
		errs = append(errs, errors.New("breaker: ConsecutiveFailures, MinRequests and HalfOpenProbes must not be negative (0 means the default)"))
	}
	if s.ConsecutiveFailures > math.MaxUint32 || s.MinRequests > math.MaxUint32 || s.HalfOpenProbes > math.MaxUint32 {
		errs = append(errs, errors.New("breaker: ConsecutiveFailures, MinRequests and HalfOpenProbes must fit in 32 bits"))
	}
	if s.FailureRatio < 0 || s.FailureRatio > 1 || math.IsNaN(s.FailureRatio) {
		errs = append(errs, fmt.Errorf("breaker: FailureRatio %v is outside (0, 1] (0 means the default, 0.5)", s.FailureRatio))
	}
	if s.Window < 0 || s.OpenTimeout < 0 || s.SlowCall < 0 {
		errs = append(errs, errors.New("breaker: Window, OpenTimeout and SlowCall must not be negative (0 means the default)"))
	}
	if len(errs) > 0 {
		return s, errors.Join(errs...)
	}
	if s.ConsecutiveFailures == 0 {
		s.ConsecutiveFailures = DefaultConsecutiveFailures
	}
	if s.FailureRatio == 0 {
		s.FailureRatio = DefaultFailureRatio
	}
	if s.MinRequests == 0 {
		s.MinRequests = DefaultMinRequests
	}
	if s.Window == 0 {
		s.Window = DefaultWindow
	}
	if s.OpenTimeout == 0 {
		s.OpenTimeout = DefaultOpenTimeout
	}
	if s.HalfOpenProbes == 0 {
		s.HalfOpenProbes = DefaultHalfOpenProbes
	}
	if s.SlowCall == 0 {
		s.SlowCall = DefaultSlowCall
	}
	return s, nil
}

// readyToTrip is the closed-state rule: n failures in a row, or the failure
// ratio over enough counted calls in the window.
func (s Settings) readyToTrip(c gobreaker.Counts) bool {
	if c.ConsecutiveFailures >= uint32(s.ConsecutiveFailures) {
		return true
	}
	counted := uint64(c.TotalSuccesses) + uint64(c.TotalFailures)
	return counted >= uint64(s.MinRequests) && float64(c.TotalFailures) >= s.FailureRatio*float64(counted)
}

// State is a breaker's state. Its numeric value is what the
// sfblocks_breaker_state gauge exports.
type State int

// The states of a [Breaker].
const (
	StateClosed   State = 0 // calls pass and are counted
	StateHalfOpen State = 1 // a few probe calls pass
	StateOpen     State = 2 // calls fail at once with an *OpenError
)

// String returns "closed", "half-open" or "open".
func (s State) String() string {
	switch s {
	case StateClosed:
		return "closed"
	case StateHalfOpen:
		return "half-open"
	case StateOpen:
		return "open"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

func fromGobreaker(s gobreaker.State) State {
	switch s {
	case gobreaker.StateHalfOpen:
		return StateHalfOpen
	case gobreaker.StateOpen:
		return StateOpen
	}
	return StateClosed
}

// Set holds one [Breaker] per integration account, created on first use.
// Safe for concurrent use.
type Set struct {
	s       Settings
	log     zerolog.Logger
	metrics *metrics

	mu       sync.Mutex
	breakers map[string]*Breaker
}

// NewSet returns an empty set of breakers configured by s. It fails when a
// setting is out of range or the metrics cannot be registered (a collector
// of the same name but another shape is already registered).
func NewSet(s Settings) (*Set, error) {
	s, err := s.withDefaults()
	if err != nil {
		return nil, err
	}
	set := &Set{s: s, log: s.Logger.With().Str("component", "breaker").Logger(), breakers: map[string]*Breaker{}}
	if s.Registerer != nil {
		if set.metrics, err = newMetrics(s.Registerer); err != nil {
			return nil, err
		}
	}
	return set, nil
}

// Settings returns the set's settings with the defaults filled in.
func (s *Set) Settings() Settings { return s.s }

// For returns the breaker of account, creating it (closed) on first use.
func (s *Set) For(account string) *Breaker {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.breakers[account]; ok {
		return b
	}
	b := newBreaker(s, account)
	s.breakers[account] = b
	return b
}

// Breaker is the circuit breaker of one integration account. Get it from
// [Set.For]. Safe for concurrent use.
type Breaker struct {
	account string
	set     *Set
	cb      *gobreaker.TwoStepCircuitBreaker[struct{}]

	mu        sync.Mutex
	state     State
	openUntil time.Time

	// lastFailure describes the most recent failure, for the log line of
	// the transition it causes. Never a URL, so never a query's values.
	lastFailure atomic.Pointer[string]
}

func newBreaker(set *Set, account string) *Breaker {
	b := &Breaker{account: account, set: set}
	s := set.s
	b.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:          account,
		MaxRequests:   uint32(s.HalfOpenProbes),
		Interval:      s.Window,
		BucketPeriod:  s.Window / windowBuckets,
		Timeout:       s.OpenTimeout,
		ReadyToTrip:   s.readyToTrip,
		IsExcluded:    func(err error) bool { return errors.Is(err, errExcluded) },
		OnStateChange: b.onStateChange,
	})
	if set.metrics != nil {
		set.metrics.init(account)
	}
	return b
}

// Account returns the account the breaker guards.
func (b *Breaker) Account() string { return b.account }

// State returns the breaker's state. An open breaker whose OpenTimeout has
// passed turns half-open here (gobreaker moves lazily), so a caller polling
// State sees the transition and its log line at that moment.
func (b *Breaker) State() State {
	return fromGobreaker(b.cb.State())
}

// OpenUntil returns, when the breaker is open, the time it turns half-open
// and lets probes through, and true; otherwise the zero time and false.
// A consumer that pauses for the account waits until then.
func (b *Breaker) OpenUntil() (time.Time, bool) {
	b.cb.State() // let an expired open state turn half-open first
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state != StateOpen {
		return time.Time{}, false
	}
	return b.openUntil, true
}

// Client returns a copy of hc whose transport passes this breaker (see
// [Breaker.Transport]). hc keeps its connection pool: the copy shares its
// transport underneath. A nil hc means http.DefaultClient.
func (b *Breaker) Client(hc *http.Client) *http.Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	out := *hc
	out.Transport = b.Transport(hc.Transport)
	return &out
}

// onStateChange runs under gobreaker's lock, once per transition.
func (b *Breaker) onStateChange(_ string, from, to gobreaker.State) {
	f, t := fromGobreaker(from), fromGobreaker(to)
	now := time.Now()
	b.mu.Lock()
	b.state = t
	if t == StateOpen {
		// gobreaker set its expiry to a moment before now + OpenTimeout, so
		// this is never earlier than the real half-open time.
		b.openUntil = now.Add(b.set.s.OpenTimeout)
	} else {
		b.openUntil = time.Time{}
	}
	until := b.openUntil
	b.mu.Unlock()

	ev := b.set.log.Info()
	if t == StateOpen {
		ev = b.set.log.Warn().Time("until", until)
		if r := b.lastFailure.Load(); r != nil {
			ev = ev.Str("last_failure", *r)
		}
	}
	ev.Str("account", b.account).Str("from", f.String()).Str("to", t.String()).Msg(transitionMessage(t))
	if b.set.metrics != nil {
		b.set.metrics.transition(b.account, t)
	}
	if b.set.s.OnStateChange != nil {
		b.set.s.OnStateChange(b.account, f, t)
	}
}

func transitionMessage(to State) string {
	switch to {
	case StateOpen:
		return "circuit breaker opened: Salesforce calls for this account fail fast until it probes again"
	case StateHalfOpen:
		return "circuit breaker half-open: probing Salesforce"
	}
	return "circuit breaker closed: Salesforce answers again"
}

// refusal builds the error for a call the breaker did not let through.
func (b *Breaker) refusal(cause error) *OpenError {
	if b.set.metrics != nil {
		b.set.metrics.rejected(b.account)
	}
	if errors.Is(cause, gobreaker.ErrTooManyRequests) {
		wait := min(b.set.s.OpenTimeout, maxProbeWait)
		return &OpenError{Account: b.account, State: StateHalfOpen, RetryAt: time.Now().Add(wait)}
	}
	b.mu.Lock()
	until := b.openUntil
	b.mu.Unlock()
	if until.IsZero() {
		// Cannot happen: the callback that records the time runs under
		// gobreaker's lock, before Allow can report the open state.
		until = time.Now().Add(b.set.s.OpenTimeout)
	}
	return &OpenError{Account: b.account, State: StateOpen, RetryAt: until}
}
