package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"crypto/rand"

	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of [KVStoreConfig].
const (
	DefaultBucket   = "sfblocks_tokens"
	DefaultLeaseTTL = 30 * time.Second
)

// KVStoreConfig configures [NewKVStore].
type KVStoreConfig struct {
	// Bucket is the key-value bucket, created if missing. Defaults to
	// DefaultBucket ("sfblocks_tokens").
	Bucket string
	// Cipher encrypts every token record. Required: without a key tokens
	// stay in memory only (use NewMemoryStore), so NewKVStore fails with
	// NO_TOKEN_KEY.
	Cipher *Cipher
	// LeaseTTL is how long a refresh lease lasts unless renewed; a worker
	// that dies mid-refresh blocks the others at most this long. Defaults
	// to DefaultLeaseTTL (30 s).
	LeaseTTL time.Duration
	// Holder names this worker in lease values (diagnostics only).
	// Defaults to hostname/pid/random.
	Holder string
	// Now is the clock used for lease expiry. Defaults to time.Now.
	Now func() time.Time
	// Replicas of the bucket's stream. Defaults to 1.
	Replicas int
}

// KVStore keeps token records in a JetStream key-value bucket shared by
// every worker, sealed with AES-256-GCM. Keys: "token.<account>" holds the
// record, "lease.<account>" the refresh lease ({holder, expires}). A lease
// is taken with Create, a stale one (expiry passed) taken over with Update
// at its revision, and released with a revision-checked Delete; waiters
// watch the lease key for its deletion or replacement.
type KVStore struct {
	kv     jetstream.KeyValue
	cipher *Cipher
	ttl    time.Duration
	holder string
	now    func() time.Time
}

// NewKVStore opens (creating if needed) the bucket. Fails with NO_TOKEN_KEY
// without a Cipher, AUTH_UNAVAILABLE if JetStream cannot be reached.
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
		History: 1, Storage: jetstream.FileStorage, Replicas: cfg.Replicas,
	})
	if err != nil {
		return nil, newError(CodeUnavailable, "", "cannot open token bucket "+cfg.Bucket+" (is JetStream enabled on the NATS server?)", err)
	}
	return &KVStore{kv: kv, cipher: cfg.Cipher, ttl: cfg.LeaseTTL, holder: cfg.Holder, now: cfg.Now}, nil
}

func tokenKey(account string) string { return "token." + account }
func leaseKey(account string) string { return "lease." + account }
func aad(account string) []byte      { return []byte("sfblocks/token/v1/" + account) }

// Load implements Store.
func (s *KVStore) Load(ctx context.Context, account string) (*Record, uint64, error) {
	e, err := s.kv.Get(ctx, tokenKey(account))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, newError(CodeUnavailable, account, "cannot read the shared token store", err)
	}
	pt, err := s.cipher.Open(e.Value(), aad(account))
	if err != nil {
		var ae *Error
		if errors.As(err, &ae) {
			ae.Account = account
			ae.Message += " (or run `sfblocks authorize --account " + account + "` to replace it)"
		}
		return nil, 0, err
	}
	rec, err := unmarshalRecord(pt)
	if err != nil {
		return nil, 0, newError(CodeTokenKey, account, "stored token record is corrupt; run `sfblocks authorize --account "+account+"` to replace it", nil)
	}
	return rec, e.Revision(), nil
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

type leaseValue struct {
	Holder  string `json:"holder"`
	Expires int64  `json:"expires_unix_ms"`
}

func (s *KVStore) leaseBytes() []byte {
	b, _ := json.Marshal(leaseValue{Holder: s.holder, Expires: s.now().Add(s.ttl).UnixMilli()})
	return b
}

// Lease implements Store: Create the lease key, or take over a stale one
// with Update at its revision, or wait for it to change or go stale.
func (s *KVStore) Lease(ctx context.Context, account string) (Lease, error) {
	key := leaseKey(account)
	for {
		rev, err := s.kv.Create(ctx, key, s.leaseBytes())
		if err == nil {
			return &kvLease{s: s, key: key, rev: rev}, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, leaseErr(ctx, account, err)
		}
		e, err := s.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			continue // released meanwhile
		}
		if err != nil {
			return nil, leaseErr(ctx, account, err)
		}
		var lv leaseValue
		_ = json.Unmarshal(e.Value(), &lv) // unreadable lease: expiry 0, taken over
		left := time.UnixMilli(lv.Expires).Sub(s.now())
		// A lease in this store's own name is one whose Create was stored
		// but whose answer was lost (a JetStream leader change): the cache
		// asks for an account's lease once at a time, so nobody else holds
		// it. Take it at its revision instead of waiting out its TTL.
		if left <= 0 || lv.Holder == s.holder {
			rev, err := s.kv.Update(ctx, key, s.leaseBytes(), e.Revision())
			if err == nil {
				return &kvLease{s: s, key: key, rev: rev}, nil
			}
			if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
				return nil, leaseErr(ctx, account, err)
			}
			continue // someone else took it over first
		}
		if err := s.waitChange(ctx, key, e.Revision(), left); err != nil {
			return nil, leaseErr(ctx, account, err)
		}
	}
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

type kvLease struct {
	s   *KVStore
	key string
	rev uint64
}

func (l *kvLease) Renew(ctx context.Context) error {
	rev, err := l.s.kv.Update(ctx, l.key, l.s.leaseBytes(), l.rev)
	if err != nil {
		return fmt.Errorf("refresh lease lost: %w", err)
	}
	l.rev = rev
	return nil
}

func (l *kvLease) Release(ctx context.Context) {
	if l.rev == 0 {
		return
	}
	// Revision-checked: never delete a lease another worker took over.
	_ = l.s.kv.Delete(ctx, l.key, jetstream.LastRevision(l.rev))
	l.rev = 0
}
