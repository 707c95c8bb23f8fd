package worker

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// The API budget. Salesforce allots each org a daily number of API
// requests (a rolling 24 hours) and refuses every request past it, a
// caller waiting in the IVR as much as a back-office batch. A [Budget]
// keeps each account's usage as Salesforce reports it on every answer
// (Sforce-Limit-Info), shares it with the fleet through a KV bucket, and
// keeps the last part of the allocation, the reserve, for synchronous
// jobs: once an account's usage enters its reserve, its durable jobs are
// parked (they wait in JetStream and use no attempt) until usage falls
// below it again, while its synchronous jobs go on. A worker whose jobs
// all wait makes no calls and so learns nothing from answers: while an
// account is in its reserve, the fleet reads its /limits now and then
// (one worker's reading serves all, through the bucket).

// Defaults of [BudgetConfig].
const (
	// DefaultBudgetBucket is the KV bucket of the fleet's API usage.
	DefaultBudgetBucket = "sfblocks_budget"
	// DefaultReserve is the fraction of an org's daily allocation kept
	// for synchronous jobs.
	DefaultReserve = 0.10
	// DefaultBudgetPoll is how often an account in its reserve has its
	// /limits read when no answer brought its usage meanwhile.
	DefaultBudgetPoll = time.Minute
)

// budgetPublishInterval is how often a worker shares an account's usage
// with the fleet, at most: usage moves by one per request, and the
// reserve is thousands of requests wide.
const budgetPublishInterval = time.Second

// BudgetConfig configures a [Budget].
type BudgetConfig struct {
	// Reserve is the fraction of each org's daily allocation kept for
	// synchronous jobs: durable jobs wait once usage reaches
	// (1 − Reserve) × allocation. 0 turns the guard off (usage is still
	// tracked and reported); negative or 1 and more is invalid. Use
	// [DefaultReserve] (0.10) for the documented default.
	Reserve float64
	// Accounts are the accounts whose usage is read from /limits at start,
	// so the guard holds before the first answer.
	Accounts []string
	// Limits reads an account's daily usage from Salesforce (GET /limits,
	// DailyApiRequests); nil leaves usage to the answers' headers.
	Limits func(ctx context.Context, account string) (used, max int, err error)
	// Poll is how often an account in its reserve has its /limits read
	// when nothing else brought fresh usage. Defaults to
	// [DefaultBudgetPoll] (1m).
	Poll time.Duration
	// Bucket is the KV bucket shared by the fleet. Defaults to
	// [DefaultBudgetBucket].
	Bucket string
	// Replicas of the bucket when Start creates it; an existing bucket
	// keeps its own (a fleet setting: 'sfblocks fleet apply --replicas N'
	// changes it). Defaults to 1.
	Replicas int
	// Worker names this worker in the bucket's entries.
	Worker string
	// Logger receives one line per account entering or leaving its
	// reserve, and failures at debug level.
	Logger zerolog.Logger
}

// BudgetState is one account's usage as a [Budget] knows it.
type BudgetState struct {
	// Used and Max are the org's daily API usage and allocation, as last
	// reported; zero before any report.
	Used, Max int
	// ReserveFrom is the usage at which durable jobs wait; 0 when the
	// guard is off or the allocation is not known yet.
	ReserveFrom int
	// InReserve reports that durable jobs of the account wait.
	InReserve bool
	// ObservedAt is when this worker last learnt the usage.
	ObservedAt time.Time
}

// Exhausted reports whether the whole daily allocation is spent.
func (s BudgetState) Exhausted() bool { return s.Max > 0 && s.Used >= s.Max }

// Budget tracks each account's API usage and tells the durable path when
// an account's jobs must wait. Create it with [NewBudget], feed it with
// [Budget.Observe], share it with [Budget.Start], hand it to workers with
// [WithBudget]. It is safe for concurrent use.
type Budget struct {
	cfg BudgetConfig

	mu       sync.Mutex
	accounts map[string]*budgetAccount
	kv       jetstream.KeyValue
}

type budgetAccount struct {
	used, max  int
	inReserve  bool
	observedAt time.Time
	dirty      bool // observed here since last shared
}

// NewBudget returns a budget; it fails when cfg.Reserve is out of range.
func NewBudget(cfg BudgetConfig) (*Budget, error) {
	if cfg.Reserve < 0 || cfg.Reserve >= 1 || math.IsNaN(cfg.Reserve) {
		return nil, fmt.Errorf("%w: API reserve %v: use a fraction from 0 (off) to below 1, e.g. 0.10", ErrInvalidOption, cfg.Reserve)
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultBudgetPoll
	}
	if cfg.Bucket == "" {
		cfg.Bucket = DefaultBudgetBucket
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	return &Budget{cfg: cfg, accounts: map[string]*budgetAccount{}}, nil
}

// reserveFrom is the usage at which max's reserve begins; 0 when off.
func (b *Budget) reserveFrom(max int) int {
	if b.cfg.Reserve == 0 || max <= 0 {
		return 0
	}
	return max - int(math.Ceil(float64(max)*b.cfg.Reserve))
}

// hysteresis is how far below its reserve usage must fall before durable
// jobs resume, so that they do not park and resume with every request
// at the boundary: 1% of the allocation.
func hysteresis(max int) int { return max / 100 }

// SetWorker names this worker in the bucket's entries (its own are not
// read back); call it before Start.
func (b *Budget) SetWorker(id string) {
	b.mu.Lock()
	b.cfg.Worker = id
	b.mu.Unlock()
}

// Observe records an account's usage as Salesforce reported it (the
// Sforce-Limit-Info header of any answer, or /limits). It is cheap: the
// fleet learns of it within a second.
func (b *Budget) Observe(account string, used, max int) {
	if b == nil {
		return
	}
	b.observe(account, used, max, true)
}

func (b *Budget) observe(account string, used, max int, local bool) {
	if max <= 0 || used < 0 {
		return
	}
	b.mu.Lock()
	a := b.accounts[account]
	if a == nil {
		a = &budgetAccount{}
		b.accounts[account] = a
	}
	a.used, a.max, a.observedAt = used, max, time.Now()
	if local {
		a.dirty = true
	}
	from := b.reserveFrom(max)
	was := a.inReserve
	switch {
	case from == 0:
		a.inReserve = false
	case !was && used >= from:
		a.inReserve = true
	case was && used < from-hysteresis(max):
		a.inReserve = false
	}
	now := a.inReserve
	b.mu.Unlock()
	switch {
	case now && !was:
		b.cfg.Logger.Warn().Str("account", account).Int("api_used", used).Int("api_max", max).Int("reserve_from", from).
			Msg("the account's API usage entered the reserve kept for synchronous jobs: its durable jobs wait in JetStream (no attempt is used) until usage falls below it; synchronous jobs go on")
	case was && !now:
		b.cfg.Logger.Info().Str("account", account).Int("api_used", used).Int("api_max", max).Int("reserve_from", from).
			Msg("the account's API usage is below its reserve again: its durable jobs resume")
	}
}

// State returns what the budget knows of account.
func (b *Budget) State(account string) BudgetState {
	if b == nil {
		return BudgetState{}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	a := b.accounts[account]
	if a == nil {
		return BudgetState{}
	}
	return BudgetState{Used: a.used, Max: a.max, ReserveFrom: b.reserveFrom(a.max), InReserve: a.inReserve, ObservedAt: a.observedAt}
}

// defers reports whether account's durable jobs must wait; a nil budget
// never defers.
func (b *Budget) defers(account string) bool {
	if b == nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	a := b.accounts[account]
	return a != nil && a.inReserve
}

func (b *Budget) worker() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cfg.Worker
}

// budgetEntry is one account's usage in the bucket.
type budgetEntry struct {
	Used   int       `json:"used"`
	Max    int       `json:"max"`
	Worker string    `json:"worker"`
	At     time.Time `json:"at"`
}

var kvKeyRe = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// budgetKey is account's key in the bucket: the name, or "=" and its
// base64url for names KV keys cannot hold.
func budgetKey(account string) string {
	if kvKeyRe.MatchString(account) {
		return account
	}
	return "=" + base64.RawURLEncoding.EncodeToString([]byte(account))
}

func budgetAccountOf(key string) string {
	if rest, ok := strings.CutPrefix(key, "="); ok {
		if b, err := base64.RawURLEncoding.DecodeString(rest); err == nil {
			return string(b)
		}
	}
	return key
}

// Start creates the fleet's budget bucket if needed, then until ctx ends:
// shares this worker's observations, adopts the others', reads the
// configured accounts' /limits once, and reads /limits again for accounts
// in their reserve that nothing else refreshed within Poll. It returns
// once the bucket exists, or with the JetStream error.
func (b *Budget) Start(ctx context.Context, js jetstream.JetStream) error {
	kctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	replicas := b.cfg.Replicas
	if kv, err := js.KeyValue(kctx, b.cfg.Bucket); err == nil {
		if st, err := kv.Status(kctx); err == nil {
			if r, ok := bucketReplicas(st); ok {
				replicas = r // a worker never changes a fleet setting
			}
		}
	}
	kv, err := js.CreateOrUpdateKeyValue(kctx, jetstream.KeyValueConfig{
		Bucket: b.cfg.Bucket, Description: "sfblocks: each account's daily API usage, as the fleet last saw it",
		History: 1, Storage: jetstream.MemoryStorage, Replicas: replicas,
	})
	cancel()
	if err != nil {
		return fmt.Errorf("worker: creating the budget bucket %s: %w", b.cfg.Bucket, err)
	}
	b.mu.Lock()
	b.kv = kv
	b.mu.Unlock()
	watcher, err := kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("worker: watching the budget bucket %s: %w", b.cfg.Bucket, err)
	}
	go b.adopt(watcher)
	go b.share(ctx, kv)
	if b.cfg.Limits != nil {
		go b.poll(ctx)
	}
	return nil
}

// adopt takes the fleet's observations as they are written.
func (b *Budget) adopt(w jetstream.KeyWatcher) {
	for e := range w.Updates() {
		if e == nil || e.Operation() != jetstream.KeyValuePut {
			continue // nil: the initial values are in
		}
		var be budgetEntry
		if json.Unmarshal(e.Value(), &be) != nil || be.Worker == b.worker() {
			continue
		}
		b.observe(budgetAccountOf(e.Key()), be.Used, be.Max, false)
	}
}

// share writes this worker's fresh observations, at most once per
// budgetPublishInterval per account.
func (b *Budget) share(ctx context.Context, kv jetstream.KeyValue) {
	t := time.NewTicker(budgetPublishInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		b.mu.Lock()
		var out []struct {
			key string
			e   budgetEntry
		}
		for name, a := range b.accounts {
			if a.dirty {
				a.dirty = false
				out = append(out, struct {
					key string
					e   budgetEntry
				}{budgetKey(name), budgetEntry{Used: a.used, Max: a.max, Worker: b.cfg.Worker, At: time.Now().UTC()}})
			}
		}
		b.mu.Unlock()
		for _, o := range out {
			data, _ := json.Marshal(o.e)
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if _, err := kv.Put(pctx, o.key, data); err != nil && ctx.Err() == nil {
				b.cfg.Logger.Debug().Err(err).Str("key", o.key).Msg("sharing API usage")
			}
			cancel()
		}
	}
}

// poll reads /limits for the configured accounts once, then for accounts
// in their reserve whose usage is older than Poll.
func (b *Budget) poll(ctx context.Context) {
	for _, name := range b.cfg.Accounts {
		b.readLimits(ctx, name)
	}
	t := time.NewTicker(max(b.cfg.Poll/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var stale []string
		b.mu.Lock()
		for name, a := range b.accounts {
			if a.inReserve && time.Since(a.observedAt) >= b.cfg.Poll {
				stale = append(stale, name)
			}
		}
		b.mu.Unlock()
		for _, name := range stale {
			b.readLimits(ctx, name)
		}
	}
}

func (b *Budget) readLimits(ctx context.Context, account string) {
	lctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	used, max, err := b.cfg.Limits(lctx, account)
	if err != nil {
		if ctx.Err() == nil && !errors.Is(err, context.Canceled) {
			b.cfg.Logger.Debug().Err(err).Str("account", account).Msg("reading the org's API usage from /limits")
		}
		// Not again before Poll: an org that refuses /limits (the
		// integration user lacks View Setup and Configuration) is not
		// asked every tick.
		b.mu.Lock()
		if a := b.accounts[account]; a != nil {
			a.observedAt = time.Now()
		}
		b.mu.Unlock()
		return
	}
	b.Observe(account, used, max)
}
