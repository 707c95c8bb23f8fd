package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"crypto/rand"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of [KVStoreConfig].
const (
	DefaultBucket   = "sfblocks_tokens"
	DefaultLeaseTTL = 30 * time.Second
)

// leaseMarkerTTL is how long the bucket keeps the marker the server leaves
// where a lease expired: waiters watching the lease key see it and take the
// lease at once, without judging any clock.
const leaseMarkerTTL = time.Minute

// KVStoreConfig configures [NewKVStore].
type KVStoreConfig struct {
	// Bucket is the key-value bucket, created if missing. Defaults to
	// DefaultBucket ("sfblocks_tokens").
	Bucket string
	// Cipher encrypts every token record. Required: without a key tokens
	// stay in memory only (use NewMemoryStore), so NewKVStore fails with
	// NO_TOKEN_KEY.
	Cipher *Cipher
	// LeaseTTL is how long a refresh lease lasts unless renewed, measured by
	// the NATS server (a per-key TTL), in whole seconds (rounded up, at
	// least 1 s). The holder renews it every third of it while it holds it,
	// and gives up its token request before the lease can run out, so a
	// worker that dies mid-refresh blocks the others at most this long and
	// a slow token endpoint never lets two workers hold it. Defaults to
	// DefaultLeaseTTL (30 s).
	LeaseTTL time.Duration
	// Holder names this worker in lease values (diagnostics only).
	// Defaults to hostname/pid/random.
	Holder string
	// Now is the wall clock written into lease values for workers of
	// earlier versions, and used to judge leases such workers wrote (they
	// carry no server TTL). It plays no part in the expiry of this
	// version's leases. Defaults to time.Now.
	Now func() time.Time
	// Replicas of the bucket's stream. Defaults to 1.
	Replicas int
}

// KVStore keeps token records in a JetStream key-value bucket shared by
// every worker, sealed with AES-256-GCM. Keys: "token.<account>" holds the
// record, "lease.<account>" the refresh lease. A lease is taken with Create
// and a per-key TTL, so the NATS server ends it by its own clock when its
// holder stops renewing it (workers' clocks may disagree by minutes); it is
// renewed by a revision-checked write with a fresh TTL and released with a
// revision-checked Delete; waiters watch the lease key for its deletion,
// expiry or replacement. The bucket needs per-key TTLs (LimitMarkerTTL,
// nats-server 2.11 or later).
type KVStore struct {
	kv     jetstream.KeyValue
	js     jetstream.JetStream
	subj   string // "$KV.<bucket>.": where lease renewals are published
	cipher *Cipher
	ttl    time.Duration
	holder string
	now    func() time.Time

	mu sync.Mutex
	// leasing counts, by lease key, this store's Lease calls in progress
	// and the leases it holds.
	leasing map[string]int
}

// NewKVStore opens (creating if needed) the bucket. Fails with NO_TOKEN_KEY
// without a Cipher, AUTH_UNAVAILABLE if JetStream cannot be reached or does
// not support per-key TTLs.
func NewKVStore(ctx context.Context, js jetstream.JetStream, cfg KVStoreConfig) (*KVStore, error) {
	if cfg.Cipher == nil {
		return nil, newError(CodeNoTokenKey, "", "the shared token store needs an encryption key; "+howToSetKey, nil)
	}
	if cfg.Bucket == "" {
		cfg.Bucket = DefaultBucket
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	// The server keeps message TTLs in whole seconds.
	cfg.LeaseTTL = (cfg.LeaseTTL + time.Second - 1).Truncate(time.Second)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Holder == "" {
		h, _ := os.Hostname()
		cfg.Holder = h + "/" + strconv.Itoa(os.Getpid()) + "/" + rand.Text()[:12]
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: cfg.Bucket, Description: "sfblocks OAuth tokens (AES-256-GCM sealed) and refresh leases",
		History: 1, Storage: jetstream.FileStorage, Replicas: cfg.Replicas, LimitMarkerTTL: leaseMarkerTTL,
	})
	if errors.Is(err, jetstream.ErrLimitMarkerTTLNotSupported) {
		return nil, newError(CodeUnavailable, "", "token bucket "+cfg.Bucket+" needs per-key TTLs for its refresh leases: use nats-server 2.11 or later", err)
	}
	if err != nil {
		return nil, newError(CodeUnavailable, "", "cannot open token bucket "+cfg.Bucket+" (is JetStream enabled on the NATS server?)", err)
	}
	return &KVStore{kv: kv, js: js, subj: "$KV." + cfg.Bucket + ".", cipher: cfg.Cipher, ttl: cfg.LeaseTTL, holder: cfg.Holder, now: cfg.Now, leasing: map[string]int{}}, nil
}

func tokenKey(account string) string { return "token." + account }
func leaseKey(account string) string { return "lease." + account }
func aad(account string) []byte      { return []byte("sfblocks/token/v1/" + account) }

// Load implements Store. A record sealed with a previous key
// ([Cipher.WithPrevious]) is re-sealed with the current one on the way (a
// revision-checked write; when it loses a race the record is returned as
// read), so that a key rotation completes as the workers read their tokens.
func (s *KVStore) Load(ctx context.Context, account string) (*Record, uint64, error) {
	e, err := s.kv.Get(ctx, tokenKey(account))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, newError(CodeUnavailable, account, "cannot read the shared token store", err)
	}
	pt, previous, err := s.cipher.open(e.Value(), aad(account))
	if err != nil {
		var ae *Error
		if errors.As(err, &ae) {
			ae.Account = account
			ae.Message += "; if the fleet's key is lost, replace the record: `sfblocks authorize --account " + account + "` for a web_server account, `sfblocks accounts reset " + account + "` for a client_credentials one"
		}
		return nil, 0, err
	}
	rec, err := unmarshalRecord(pt)
	if err != nil {
		return nil, 0, newError(CodeTokenKey, account, "stored token record is corrupt; run `sfblocks authorize --account "+account+"` to replace it", nil)
	}
	rev := e.Revision()
	if previous {
		if v, err := s.seal(account, rec); err == nil {
			if nrev, err := s.kv.Update(ctx, tokenKey(account), v, rev); err == nil {
				rev = nrev
			}
		}
	}
	return rec, rev, nil
}

func (s *KVStore) seal(account string, rec *Record) ([]byte, error) {
	pt, err := rec.marshal()
	if err != nil {
		return nil, err
	}
	return s.cipher.Seal(pt, aad(account))
}

// Save implements Store.
func (s *KVStore) Save(ctx context.Context, account string, rec *Record, rev uint64) (uint64, error) {
	v, err := s.seal(account, rec)
	if err != nil {
		return 0, newError(CodeUnavailable, account, "cannot seal token record", err)
	}
	var nrev uint64
	if rev == 0 {
		nrev, err = s.kv.Create(ctx, tokenKey(account), v)
	} else {
		nrev, err = s.kv.Update(ctx, tokenKey(account), v, rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return 0, errConflict
	}
	if err != nil {
		return 0, newError(CodeUnavailable, account, "cannot write the shared token store", err)
	}
	return nrev, nil
}

// Put implements Store.
func (s *KVStore) Put(ctx context.Context, account string, rec *Record) (uint64, error) {
	v, err := s.seal(account, rec)
	if err != nil {
		return 0, newError(CodeUnavailable, account, "cannot seal token record", err)
	}
	rev, err := s.kv.Put(ctx, tokenKey(account), v)
	if err != nil {
		return 0, newError(CodeUnavailable, account, "cannot write the shared token store", err)
	}
	return rev, nil
}

// leaseValue is a lease's content. Expires is for workers of earlier
// versions, which judge it by their own clock; TTLMS says the server
// expires this lease, so this version never reads Expires of such a lease.
type leaseValue struct {
	Holder  string `json:"holder"`
	Expires int64  `json:"expires_unix_ms"`
	TTLMS   int64  `json:"ttl_ms,omitempty"`
}

func (s *KVStore) leaseBytes() []byte {
	b, _ := json.Marshal(leaseValue{Holder: s.holder, Expires: s.now().Add(s.ttl).UnixMilli(), TTLMS: s.ttl.Milliseconds()})
	return b
}

// Lease implements Store: Create the lease key with the lease TTL, or wait
// for it to be released or to expire on the server. A lease an earlier
// version wrote (no server TTL) is judged by its expiry, as that version
// does, and taken over with a revision-checked write.
func (s *KVStore) Lease(ctx context.Context, account string) (Lease, error) {
	key := leaseKey(account)
	alone := s.enter(key)
	held := false
	defer func() {
		if !held {
			s.leave(key)
		}
	}()
	for {
		sent := time.Now()
		rev, err := s.kv.Create(ctx, key, s.leaseBytes(), jetstream.KeyTTL(s.ttl))
		if err == nil {
			held = true
			return s.held(key, rev, sent), nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, leaseErr(ctx, account, err)
		}
		e, err := s.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			continue // released or expired meanwhile
		}
		if err != nil {
			return nil, leaseErr(ctx, account, err)
		}
		// The server's marker of the expiry normally ends the wait; the
		// TTL bounds it should a marker be missed.
		wait := s.ttl
		var lv leaseValue
		_ = json.Unmarshal(e.Value(), &lv) // unreadable lease: an old one, expired
		left := time.UnixMilli(lv.Expires).Sub(s.now())
		// A lease in this store's own name while no other Lease call of
		// this store is running or holding it is one whose Create was
		// stored but whose answer was lost (a JetStream leader change):
		// nobody holds it. Take it back at its revision instead of waiting
		// out its TTL. A lease an earlier version wrote (no server TTL) is
		// taken over once its expiry has passed.
		if (lv.Holder == s.holder && alone()) || (lv.TTLMS == 0 && left <= 0) {
			sent := time.Now()
			rev, err := s.publishLease(ctx, key, e.Revision())
			if err == nil {
				held = true
				return s.held(key, rev, sent), nil
			}
			if !wrongRevision(err) {
				return nil, leaseErr(ctx, account, err)
			}
			continue // someone else took it over first
		}
		if lv.TTLMS == 0 {
			wait = left
		}
		if err := s.waitChange(ctx, key, e.Revision(), wait); err != nil {
			return nil, leaseErr(ctx, account, err)
		}
	}
}

// enter counts a Lease call for key in; alone then reports whether it is
// the only one of this store running or holding key's lease.
func (s *KVStore) enter(key string) (alone func() bool) {
	s.mu.Lock()
	s.leasing[key]++
	s.mu.Unlock()
	return func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.leasing[key] == 1
	}
}

// leave counts a Lease call that failed, or a released lease, out.
func (s *KVStore) leave(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.leasing[key]--; s.leasing[key] <= 0 {
		delete(s.leasing, key)
	}
}

// publishLease writes the lease at revision rev with a fresh server TTL
// (KeyValue.Update cannot set one).
func (s *KVStore) publishLease(ctx context.Context, key string, rev uint64) (uint64, error) {
	m := nats.NewMsg(s.subj + key)
	m.Data = s.leaseBytes()
	ack, err := s.js.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(rev), jetstream.WithMsgTTL(s.ttl))
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

// wrongRevision reports whether err is a revision-checked write's conflict.
func wrongRevision(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// waitChange returns when key gets a revision after rev, or after d.
func (s *KVStore) waitChange(ctx context.Context, key string, rev uint64, d time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, d+10*time.Millisecond)
	defer cancel()
	w, err := s.kv.Watch(wctx, key, jetstream.ResumeFromRevision(rev+1), jetstream.MetaOnly())
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return ctx.Err()
			}
			if e != nil && e.Revision() > rev {
				return nil
			}
		case <-wctx.Done():
			return ctx.Err() // nil when only the wait timed out
		}
	}
}

func leaseErr(ctx context.Context, account string, err error) error {
	if ctx.Err() != nil {
		return newError(CodeUnavailable, account, "timed out waiting for another worker's token refresh", ctx.Err())
	}
	return newError(CodeUnavailable, account, "cannot take the refresh lease in the shared token store", err)
}

// errLeaseTaken: a renewal found another revision: the lease expired and
// someone else holds it now, or it was released.
var errLeaseTaken = errors.New("the lease expired and was taken over")

// held starts keeping the lease stored at rev alive. sent is when the write
// that stored it was sent: the server's TTL started no earlier.
func (s *KVStore) held(key string, rev uint64, sent time.Time) *kvLease {
	l := &kvLease{s: s, key: key, rev: rev, lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	l.until = l.safeUntil(sent)
	go l.keepAlive()
	return l
}

// kvLease is a held lease. Its holder trusts it until until: the send time
// of the last write that stored it, plus the TTL, less a margin for the
// holder to give up its token request. Durations are measured on this
// process's monotonic clock, so a wrong wall clock cannot stretch them.
type kvLease struct {
	s   *KVStore
	key string
	// renewMu serialises renewals: two at one revision would each see the
	// other's as a takeover.
	renewMu sync.Mutex

	mu       sync.Mutex
	rev      uint64 // 0 once released
	until    time.Time
	lost     chan struct{}
	lostOnce sync.Once

	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

func (l *kvLease) safeUntil(sent time.Time) time.Time {
	return sent.Add(l.s.ttl - l.s.ttl/5)
}

// keepAlive renews the lease every third of its TTL until it is released
// or lost; it closes lost when a renewal finds it taken over or when no
// renewal succeeded in time.
func (l *kvLease) keepAlive() {
	defer close(l.done)
	every := l.s.ttl / 3
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		l.mu.Lock()
		left := time.Until(l.until)
		l.mu.Unlock()
		if left <= 0 {
			l.markLost()
			return
		}
		expire := time.NewTimer(left)
		select {
		case <-l.stop:
			expire.Stop()
			return
		case <-expire.C:
			continue // until may have moved meanwhile: look again
		case <-tick.C:
			expire.Stop()
		}
		// A renewal cannot outlast the trust it would extend.
		ctx, cancel := context.WithTimeout(context.Background(), min(every, left))
		err := l.renew(ctx)
		cancel()
		if errors.Is(err, errLeaseTaken) {
			l.markLost()
			return
		}
	}
}

func (l *kvLease) markLost() { l.lostOnce.Do(func() { close(l.lost) }) }

func (l *kvLease) renew(ctx context.Context) error {
	l.renewMu.Lock()
	defer l.renewMu.Unlock()
	select {
	case <-l.lost:
		return errLeaseTaken
	default:
	}
	l.mu.Lock()
	rev := l.rev
	l.mu.Unlock()
	if rev == 0 {
		return errLeaseTaken
	}
	sent := time.Now()
	nrev, err := l.s.publishLease(ctx, l.key, rev)
	if wrongRevision(err) {
		return errLeaseTaken
	}
	if err != nil {
		return err
	}
	l.mu.Lock()
	if l.rev == rev {
		l.rev, l.until = nrev, l.safeUntil(sent)
	}
	l.mu.Unlock()
	return nil
}

// Renew implements Lease.
func (l *kvLease) Renew(ctx context.Context) error {
	if err := l.renew(ctx); err != nil {
		return fmt.Errorf("refresh lease lost: %w", err)
	}
	return nil
}

// Lost implements Lease.
func (l *kvLease) Lost() <-chan struct{} { return l.lost }

// Release implements Lease: it stops the renewals, then deletes the lease
// if this holder still has it.
func (l *kvLease) Release(ctx context.Context) {
	l.stopOnce.Do(func() { close(l.stop) })
	<-l.done
	l.mu.Lock()
	rev := l.rev
	l.rev = 0
	l.mu.Unlock()
	if rev == 0 {
		return
	}
	defer l.s.leave(l.key)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	// Revision-checked: never delete a lease another worker took over.
	_ = l.s.kv.Delete(ctx, l.key, jetstream.LastRevision(rev))
}
