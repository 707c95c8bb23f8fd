package auth

import (
	"context"
	"encoding/json"
	"sync"
	"time"
)

// Record is what the token store keeps per account: the current access
// token, the current (possibly rotated) refresh token, and the mark of a
// credential Salesforce refused. Access and refresh token are written
// together, so a rotated refresh token is stored in the same atomic write
// that publishes the access token it came with.
type Record struct {
	AccessToken  Secret
	RefreshToken Secret
	InstanceURL  string
	// ID is Salesforce's identity URL for the authorized user.
	ID    string
	Scope string
	// IssuedAt is when this worker fleet received the access token.
	IssuedAt time.Time
	// FailedCredential is the fingerprint of the refresh token (or client
	// secret) Salesforce refused; no worker presents it again.
	FailedCredential string
	// FailedMessage says why, for the AUTH_FAILED error other workers give.
	FailedMessage string
}

// wireRecord is Record as stored (plaintext before sealing); Secret would
// redact itself in JSON, so the values are copied out explicitly.
type wireRecord struct {
	AccessToken      string    `json:"access_token,omitempty"`
	RefreshToken     string    `json:"refresh_token,omitempty"`
	InstanceURL      string    `json:"instance_url,omitempty"`
	ID               string    `json:"id,omitempty"`
	Scope            string    `json:"scope,omitempty"`
	IssuedAt         time.Time `json:"issued_at"`
	FailedCredential string    `json:"failed_credential,omitempty"`
	FailedMessage    string    `json:"failed_message,omitempty"`
}

func (r *Record) marshal() ([]byte, error) {
	return json.Marshal(wireRecord{
		AccessToken: r.AccessToken.Reveal(), RefreshToken: r.RefreshToken.Reveal(), InstanceURL: r.InstanceURL,
		ID: r.ID, Scope: r.Scope, IssuedAt: r.IssuedAt, FailedCredential: r.FailedCredential, FailedMessage: r.FailedMessage,
	})
}

func unmarshalRecord(b []byte) (*Record, error) {
	var w wireRecord
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, err
	}
	return &Record{
		AccessToken: Secret(w.AccessToken), RefreshToken: Secret(w.RefreshToken), InstanceURL: w.InstanceURL,
		ID: w.ID, Scope: w.Scope, IssuedAt: w.IssuedAt, FailedCredential: w.FailedCredential, FailedMessage: w.FailedMessage,
	}, nil
}

// Store keeps token records and arbitrates who refreshes. Implementations:
// [MemoryStore] (one process, nothing at rest) and [KVStore] (a JetStream
// key-value bucket shared by the fleet, encrypted). All methods are safe for
// concurrent use.
type Store interface {
	// Load returns the account's record and its revision; (nil, 0, nil)
	// when there is none.
	Load(ctx context.Context, account string) (*Record, uint64, error)
	// Save writes rec if the stored revision is still rev (0: no record
	// yet) and returns the new revision; errConflict otherwise.
	Save(ctx context.Context, account string, rec *Record, rev uint64) (uint64, error)
	// Put writes rec unconditionally (used by authorize).
	Put(ctx context.Context, account string, rec *Record) (uint64, error)
	// Lease blocks until this caller holds the account's refresh lease, or
	// ctx ends. A lease whose holder died expires after the store's lease
	// TTL and is taken over.
	Lease(ctx context.Context, account string) (Lease, error)
}

// Lease is the right to refresh one account's token.
type Lease interface {
	// Renew extends the lease; an error means it was lost (expired and
	// taken over) and the holder must not write.
	Renew(ctx context.Context) error
	// Release gives the lease up; safe to call more than once.
	Release(ctx context.Context)
}

// errConflict is Save's revision mismatch; the cache reloads and decides again.
var errConflict = newError(CodeUnavailable, "", "token record changed concurrently", nil)

// MemoryStore keeps records in this process only. Used when no token key
// is configured: each worker then refreshes on its own and nothing survives
// a restart (a web_server account needs its refresh token from the config).
type MemoryStore struct {
	mu     sync.Mutex
	recs   map[string]*Record
	revs   map[string]uint64
	leases map[string]chan struct{}
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{recs: map[string]*Record{}, revs: map[string]uint64{}, leases: map[string]chan struct{}{}}
}

// Load implements Store.
func (m *MemoryStore) Load(_ context.Context, account string) (*Record, uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.recs[account]
	if !ok {
		return nil, 0, nil
	}
	cp := *r
	return &cp, m.revs[account], nil
}

// Save implements Store.
func (m *MemoryStore) Save(_ context.Context, account string, rec *Record, rev uint64) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.revs[account] != rev {
		return 0, errConflict
	}
	cp := *rec
	m.recs[account] = &cp
	m.revs[account]++
	return m.revs[account], nil
}

// Put implements Store.
func (m *MemoryStore) Put(_ context.Context, account string, rec *Record) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cp := *rec
	m.recs[account] = &cp
	m.revs[account]++
	return m.revs[account], nil
}

// Lease implements Store with a per-account semaphore.
func (m *MemoryStore) Lease(ctx context.Context, account string) (Lease, error) {
	m.mu.Lock()
	ch, ok := m.leases[account]
	if !ok {
		ch = make(chan struct{}, 1)
		m.leases[account] = ch
	}
	m.mu.Unlock()
	select {
	case ch <- struct{}{}:
		return &memLease{ch: ch}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type memLease struct {
	once sync.Once
	ch   chan struct{}
}

func (l *memLease) Renew(context.Context) error { return nil }
func (l *memLease) Release(context.Context)     { l.once.Do(func() { <-l.ch }) }
