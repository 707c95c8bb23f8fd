package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/sfblocks/sfblocks"
)

// Defaults of [StatusConfig].
const (
	// DefaultStatusInterval is how often a worker reports its accounts.
	DefaultStatusInterval = 5 * time.Second
	// DefaultStatusTTL is how long a report lives in the status bucket: the
	// entries of a worker that died without removing them expire then.
	DefaultStatusTTL = 30 * time.Second
)

// AccountStatus is one account's health as one worker sees it: one entry
// of the status bucket, written by [ReportStatus] and read by
// [ReadStatus] (`sfblocks status`). It says nothing a Salesforce call
// would have to find out: every field is the worker's own state.
type AccountStatus struct {
	// Account is the integration account's name.
	Account string `json:"account"`
	// Worker names the reporting worker (host and process id).
	Worker string `json:"worker"`
	// Breaker is the account's circuit breaker state: "closed", "open" or
	// "half-open".
	Breaker string `json:"breaker"`
	// BreakerOpenUntil is when an open breaker probes Salesforce again.
	BreakerOpenUntil *time.Time `json:"breaker_open_until,omitempty"`
	// Token is the state of the account's access token in this worker.
	Token TokenStatus `json:"token"`
	// APIUsed and APIMax are the org's daily API usage, as Salesforce last
	// reported it in Sforce-Limit-Info; zero before the first call.
	APIUsed int `json:"api_used"`
	APIMax  int `json:"api_max"`
	// APIReserveFrom is the usage from which the account's durable jobs
	// wait (see [Budget]); 0 when the guard is off or usage is unknown.
	APIReserveFrom int `json:"api_reserve_from,omitempty"`
	// Budget is "ok", "reserve" (durable jobs wait) or "exhausted" (the
	// daily allocation is spent); "" when unknown.
	Budget string `json:"budget,omitempty"`
	// UpdatedAt is when the worker wrote this entry.
	UpdatedAt time.Time `json:"updated_at"`
}

// TokenStatus is an account's token state in [AccountStatus].
type TokenStatus struct {
	// State is "none" (no token fetched yet), "valid", "rejected"
	// (Salesforce refused the current token; the next job refreshes it),
	// "retrying" (Salesforce refused the credentials in a way that may
	// heal; see RetryAt) or "failed" (the last fetch failed: see
	// ErrorCode).
	State string `json:"state"`
	// IssuedAt is when the current token was issued, zero without one.
	IssuedAt time.Time `json:"issued_at,omitzero"`
	// ErrorCode is the code of the last fetch's error (AUTH_FAILED,
	// NOT_AUTHORIZED, AUTH_RETRYING, AUTH_UNAVAILABLE, ...), "" after a
	// success.
	ErrorCode string `json:"error_code,omitempty"`
	// RetryAt is when the fleet sends the next token request in state
	// "retrying"; zero otherwise.
	RetryAt time.Time `json:"retry_at,omitzero"`
}

// StatusConfig configures [ReportStatus] and [ReadStatus]; its zero value
// works.
type StatusConfig struct {
	// Bucket is the KV bucket (memory storage: a report is only worth its
	// freshness). Defaults to [sfblocks.DefaultStatusBucket].
	Bucket string
	// Interval is how often the accounts are reported. Defaults to
	// [DefaultStatusInterval] (5s).
	Interval time.Duration
	// TTL is how long a report lives. Defaults to [DefaultStatusTTL] (30s);
	// it should be several intervals.
	TTL time.Duration
	// Nudge, when set, makes the reporter write at once on every receive
	// instead of waiting for the next interval: send on it (without
	// blocking) when an account's state changes, such as its breaker
	// opening, so that 'sfblocks status' shows an outage while it lasts.
	Nudge <-chan struct{}
	// Logger receives the reporter's failures, at debug level (a missed
	// report is harmless). The zero value logs nothing.
	Logger zerolog.Logger
	// Replicas is the bucket's replica count when ReportStatus creates it
	// (an existing bucket keeps its own, as every fleet setting: see
	// [ApplyFleet]). Defaults to 1.
	Replicas int
}

func (c StatusConfig) withDefaults() StatusConfig {
	if c.Bucket == "" {
		c.Bucket = sfblocks.DefaultStatusBucket
	}
	if c.Interval <= 0 {
		c.Interval = DefaultStatusInterval
	}
	if c.TTL <= 0 {
		c.TTL = DefaultStatusTTL
	}
	return c
}

// statusKey is the entry of one account as one worker reports it.
func statusKey(account, worker string) string { return account + "." + worker }

// ReportStatus creates the status bucket if needed, writes what collect
// returns now and then every interval until ctx ends, and finally removes
// this worker's entries so that readers see only live workers. collect is
// called on the reporter's goroutine and must not block (it reads the
// accounts' in-process state, never Salesforce); each entry's Worker is set
// to worker. ReportStatus returns once the bucket exists, or with the
// JetStream error when it cannot be created.
func ReportStatus(ctx context.Context, js jetstream.JetStream, worker string, collect func() []AccountStatus, cfg StatusConfig) error {
	cfg = cfg.withDefaults()
	kctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	kv, err := openStatusBucket(kctx, js, cfg)
	cancel()
	if err != nil {
		return fmt.Errorf("worker: creating the status bucket %s: %w", cfg.Bucket, err)
	}
	var written []string
	put := func() {
		now := time.Now().UTC()
		for _, st := range collect() {
			st.Worker, st.UpdatedAt = worker, now
			data, err := json.Marshal(st)
			if err != nil {
				continue
			}
			key := statusKey(st.Account, worker)
			// A report lost to a leader change is tried again within the
			// interval; the next report replaces it anyway.
			err = retryJS(ctx, cfg.Interval, min(cfg.Interval, 2*time.Second), "writing status", "KV_"+cfg.Bucket, func(ctx context.Context) error {
				_, err := kv.Put(ctx, key, data)
				return err
			})
			if ctx.Err() != nil {
				return
			}
			switch {
			case err == nil:
				if !slices.Contains(written, key) {
					written = append(written, key)
				}
			case ctx.Err() == nil:
				cfg.Logger.Debug().Err(err).Str("account", st.Account).Msg("writing status")
			}
		}
	}
	go func() {
		put()
		t := time.NewTicker(cfg.Interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				for _, key := range written {
					_ = kv.Delete(dctx, key)
				}
				cancel()
				return
			case <-t.C:
				put()
			case <-cfg.Nudge:
				put()
			}
		}
	}()
	return nil
}

// openStatusBucket opens the status bucket, creating it when it is missing;
// an existing one is kept as it is (another worker may be creating it at
// the same moment: the loser reads the winner's).
func openStatusBucket(ctx context.Context, js jetstream.JetStream, cfg StatusConfig) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return kv, err
	}
	kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: cfg.Bucket, Description: "sfblocks: each worker's view of each account (sfblocks status)",
		TTL: cfg.TTL, History: 1, Storage: jetstream.MemoryStorage, Replicas: max(cfg.Replicas, 1),
	})
	if errors.Is(err, jetstream.ErrBucketExists) || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return js.KeyValue(ctx, cfg.Bucket)
	}
	return kv, err
}

// ReadStatus returns every live report of the status bucket, sorted by
// account and worker; none (and no error) when no worker ever reported.
func ReadStatus(ctx context.Context, js jetstream.JetStream, cfg StatusConfig) ([]AccountStatus, error) {
	cfg = cfg.withDefaults()
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("worker: opening the status bucket %s: %w", cfg.Bucket, err)
	}
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("worker: listing the status bucket %s: %w", cfg.Bucket, err)
	}
	var out []AccountStatus
	for key := range lister.Keys() {
		e, err := kv.Get(ctx, key)
		if err != nil {
			continue // expired or deleted since the listing
		}
		var s AccountStatus
		if json.Unmarshal(e.Value(), &s) == nil {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Account != out[j].Account {
			return out[i].Account < out[j].Account
		}
		return out[i].Worker < out[j].Worker
	})
	return out, nil
}
