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
	// AuthID identifies the authorization (`sfblocks authorize`) the
	// refresh token descends from; "" for records written otherwise.
	AuthID string
	// Generation counts the refresh tokens of that authorization: each
	// rotation stores the next one. With AuthID it tells which of two
	// records holds the newer refresh token, so that a refusal of an old
	// token never overwrites a newer one.
	Generation uint64
	// FailedCredential is the fingerprint of the refresh token (or client
	// secret) Salesforce refused; no worker presents it again, or (with
	// Refusals > 0) not before the refusal's backoff has passed.
	FailedCredential string
	// FailedMessage says why, for the error other workers give.
	FailedMessage string
	// Refusals counts consecutive refusals of FailedCredential that may
	// heal by themselves (AUTH_RETRYING); 0 marks a final refusal
	// (AUTH_FAILED).
	Refusals int
	// FailedAt is when the last refusal was answered, by the refusing
	// worker's clock: the start of its backoff.
	FailedAt time.Time
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
	AuthID           string    `json:"auth_id,omitempty"`
	Generation       uint64    `json:"generation,omitempty"`
	FailedCredential string    `json:"failed_credential,omitempty"`
	FailedMessage    string    `json:"failed_message,omitempty"`
	Refusals         int       `json:"refusals,omitempty"`
	FailedAt         time.Time `json:"failed_at,omitzero"`
}

func (r *Record) marshal() ([]byte, error) {
	return json.Marshal(wireRecord{
		AccessToken: r.AccessToken.Reveal(), RefreshToken: r.RefreshToken.Reveal(), InstanceURL: r.InstanceURL,
		ID: r.ID, Scope: r.Scope, IssuedAt: r.IssuedAt, AuthID: r.AuthID, Generation: r.Generation,
		FailedCredential: r.FailedCredential, FailedMessage: r.FailedMessage, Refusals: r.Refusals, FailedAt: r.FailedAt,
	})
}

func unmarshalRecord(b []byte) (*Record, error) {
	var w wireRecord
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, err
	}
	return &Record{
		AccessToken: Secret(w.AccessToken), RefreshToken: Secret(w.RefreshToken), InstanceURL: w.InstanceURL,
		ID: w.ID, Scope: w.Scope, IssuedAt: w.IssuedAt, AuthID: w.AuthID, Generation: w.Generation,
		FailedCredential: w.FailedCredential, FailedMessage: w.FailedMessage, Refusals: w.Refusals, FailedAt: w.FailedAt,
	}, nil
}

// clearRefusal removes the mark of a refused credential.
func (r *Record) clearRefusal() {
	r.FailedCredential, r.FailedMessage, r.Refusals, r.FailedAt = "", "", 0, time.Time{}
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

// Lease is the right to refresh one account's token. A store whose leases
// can expire keeps its lease alive while it is held.
type Lease interface {
	// Renew extends the lease; an error means it was lost (expired and
	// taken over) and the holder must not write.
	Renew(ctx context.Context) error
	// Lost is closed once the holder can no longer be sure it holds the
	// lease (it was taken over, or could not be renewed in time); a token
	// request still running must then be given up, before another worker
	// can send one. nil for leases that cannot be lost.
	Lost() <-chan struct{}
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
func (l *memLease) Lost() <-chan struct{}       { return nil }
func (l *memLease) Release(context.Context)     { l.once.Do(func() { <-l.ch }) }
