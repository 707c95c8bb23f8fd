package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sfblocks/sfblocks"
)

// What an operator may read of the fleet's bookkeeping, without running
// anything: the API budget the fleet shares, and one job's attempts and
// lease. `sfblocks console` shows them; nothing here writes.

// BudgetReading is one account's entry in the budget bucket: the fleet's
// latest reading of the org's daily API usage, and who took it when.
type BudgetReading struct {
	Account string `json:"account"`
	// Used and Max are the org's daily API usage and allocation.
	Used int `json:"used"`
	Max  int `json:"max"`
	// Worker is the worker that shared the reading, At when.
	Worker string    `json:"worker"`
	At     time.Time `json:"at"`
}

// ReadBudget returns every account's latest reading in the fleet's budget
// bucket (bucket "" means [DefaultBudgetBucket]), sorted by account; none,
// and no error, when no worker created the bucket yet.
func ReadBudget(ctx context.Context, js jetstream.JetStream, bucket string) ([]BudgetReading, error) {
	if bucket == "" {
		bucket = DefaultBudgetBucket
	}
	kv, err := js.KeyValue(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("worker: opening the budget bucket %s: %w", bucket, err)
	}
	lister, err := kv.ListKeys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("worker: listing the budget bucket %s: %w", bucket, err)
	}
	var out []BudgetReading
	for key := range lister.Keys() {
		e, err := kv.Get(ctx, key)
		if err != nil {
			continue // deleted since the listing
		}
		var be budgetEntry
		if json.Unmarshal(e.Value(), &be) != nil {
			continue
		}
		out = append(out, BudgetReading{Account: budgetAccountOf(key), Used: be.Used, Max: be.Max, Worker: be.Worker, At: be.At})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Account < out[j].Account })
	return out, nil
}

// LedgerBuckets names the buckets [ReadJobLedger] reads; empty names are
// the defaults ([sfblocks.DefaultAttemptsBucket], [DefaultClaimsBucket]).
type LedgerBuckets struct {
	Attempts string
	Claims   string
}

// JobLedger is what the fleet's ledger holds of one job besides its kept
// result (which [github.com/sfblocks/sfblocks/worker/client.Client.Result]
// reads).
type JobLedger struct {
	// Attempts is the job's entry in the attempts bucket; nil when it has
	// none: it never failed with a retryable error, or its final outcome
	// cleared it.
	Attempts *JobAttempts `json:"attempts,omitempty"`
	// Claim is the lease of the attempt under way; nil when no worker
	// holds the job.
	Claim *JobClaim `json:"claim,omitempty"`
}

// JobAttempts is a job's failure history, as the worker that runs it next
// reads it.
type JobAttempts struct {
	// Attempts is the number of runs that failed with a retryable error.
	Attempts     int           `json:"attempts"`
	FirstFailure time.Time     `json:"first_failure,omitzero"`
	LastFailure  time.Time     `json:"last_failure,omitzero"`
	LastCode     sfblocks.Code `json:"last_code,omitempty"`
	LastMessage  string        `json:"last_message,omitempty"`
	// FinalReason is set when the job's final failure is kept here because
	// dead-lettering it failed: its next delivery dead-letters it (with this
	// reason) without running it again.
	FinalReason string `json:"final_reason,omitempty"`
	// Running is set while an Insert attempt whose outcome is not known
	// yet may have created its record: the next run reconciles it.
	Running *JobRun `json:"running,omitempty"`
	// Stored is when the entry was last written, by the NATS server's
	// clock.
	Stored time.Time `json:"stored"`
}

// JobRun is an Insert attempt that may have saved its record.
type JobRun struct {
	Attempt int           `json:"attempt"`
	Worker  string        `json:"worker"`
	Timeout time.Duration `json:"timeout"`
	// Started is when the attempt started, by the NATS server's clock.
	Started time.Time `json:"started"`
}

// JobClaim is the lease of the attempt running a job.
type JobClaim struct {
	Worker  string        `json:"worker"`
	Attempt int           `json:"attempt"`
	Timeout time.Duration `json:"timeout"`
	// Claimed is when the lease was taken or last renewed, by the NATS
	// server's clock; the server removes it when its TTL runs out.
	Claimed time.Time `json:"claimed"`
}

// ReadJobLedger returns job's attempts and lease. A bucket that does not
// exist yet holds nothing. It reads both buckets even when one fails, and
// returns what it could read with the failures joined (a NATS user that may
// not read a bucket gets a permissions error or a timeout for it).
func ReadJobLedger(ctx context.Context, js jetstream.JetStream, job sfblocks.JobIdentity, b LedgerBuckets) (JobLedger, error) {
	if b.Attempts == "" {
		b.Attempts = sfblocks.DefaultAttemptsBucket
	}
	if b.Claims == "" {
		b.Claims = DefaultClaimsBucket
	}
	key := job.Key()
	var out JobLedger
	var errs []error
	if kv, err := openBucket(ctx, js, b.Attempts); err != nil {
		errs = append(errs, err)
	} else if kv != nil {
		l := &ledger{attempts: kv, timeout: DefaultLedgerReadTimeout}
		h, err := l.history(ctx, key)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("worker: reading %s from the attempts bucket %s: %w", key, b.Attempts, err))
		case h.revision != 0:
			a := &JobAttempts{Attempts: h.Attempts, FirstFailure: h.FirstFailure, LastFailure: h.LastFailure,
				LastCode: h.LastCode, LastMessage: h.LastMessage, Stored: h.stored}
			if len(h.Final) > 0 {
				a.FinalReason = h.Reason
				if a.FinalReason == "" {
					a.FinalReason = "unknown"
				}
			}
			if r := h.Running; r != nil {
				a.Running = &JobRun{Attempt: r.Attempt, Worker: r.Worker, Timeout: time.Duration(r.TimeoutMS) * time.Millisecond, Started: r.Started}
			}
			out.Attempts = a
		}
	}
	if kv, err := openBucket(ctx, js, b.Claims); err != nil {
		errs = append(errs, err)
	} else if kv != nil {
		e, err := kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			errs = append(errs, fmt.Errorf("worker: reading %s from the claims bucket %s: %w", key, b.Claims, err))
		default:
			var ls lease
			_ = json.Unmarshal(e.Value(), &ls)
			out.Claim = &JobClaim{Worker: ls.Worker, Attempt: ls.Attempt, Timeout: time.Duration(ls.TimeoutMS) * time.Millisecond, Claimed: e.Created()}
		}
	}
	return out, errors.Join(errs...)
}

// DefaultLedgerReadTimeout bounds one read of [ReadJobLedger] when ctx has
// no earlier deadline.
const DefaultLedgerReadTimeout = 5 * time.Second

// openBucket opens a bucket for reading; nil, nil when it does not exist.
func openBucket(ctx context.Context, js jetstream.JetStream, bucket string) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("worker: opening the bucket %s: %w", bucket, err)
	}
	return kv, nil
}
