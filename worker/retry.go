package worker

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/sfblocks/sfblocks"
)

// failureState is a durable job's failure history, kept in the attempts
// bucket between deliveries: JetStream redelivers the same message, whose
// headers cannot change, so the count of real attempts lives here.
type failureState struct {
	// Attempts is the number of runs that failed with a retryable error.
	Attempts     int           `json:"attempts"`
	FirstFailure time.Time     `json:"first_failure"`
	LastFailure  time.Time     `json:"last_failure"`
	LastCode     sfblocks.Code `json:"last_code,omitempty"`
	LastMessage  string        `json:"last_message,omitempty"`
	// Final holds the final failed reply when dead-lettering it failed: the
	// next delivery only dead-letters again and never runs the job.
	Final json.RawMessage `json:"final,omitempty"`
	// Reason is the dead-letter reason of Final.
	Reason string `json:"reason,omitempty"`
	// Running is the run record of an Insert attempt whose outcome is not
	// known yet (see ledger.go); nil when no attempt may have saved.
	Running *runRecord `json:"running,omitempty"`
}

// retryPolicy is the part of [DurableConfig] settle reads.
type retryPolicy struct {
	maxAttempts int
	maxDeliver  int // -1: unlimited
	backoff     time.Duration
	maxBackoff  time.Duration
	// jitter returns a random duration in [0, d); nil uses math/rand.
	jitter func(d time.Duration) time.Duration
}

// backoffFor is the wait before attempt next (2 for the first retry):
// backoff×2^(next-2), capped at maxBackoff, of which the upper half is
// random, so jobs that failed together do not come back together.
func (p retryPolicy) backoffFor(next int) time.Duration {
	d := p.backoff
	for i := 2; i < next && d < p.maxBackoff; i++ {
		d *= 2
	}
	d = min(d, p.maxBackoff)
	return d/2 + p.rand(d-d/2)
}

func (p retryPolicy) rand(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	if p.jitter != nil {
		return p.jitter(d)
	}
	return rand.N(d)
}

// breakerOpen is what an open circuit breaker's error offers (package
// breaker's *OpenError), found without importing that package.
type breakerOpen interface {
	BreakerOpen() bool
	RetryAfter() time.Duration
}

// cause returns the error behind a failed reply, nil when it has none (a
// reply read back from the results bucket, or built by a test).
func cause(r *sfblocks.Reply) error {
	if r == nil {
		return nil
	}
	return r.Err
}

// notSentFor reports whether the reply's failure was refused by an open
// circuit breaker before anything was sent, and how long until it may let
// calls through.
func notSentFor(r *sfblocks.Reply) (time.Duration, bool) {
	var open breakerOpen
	if err := cause(r); err != nil && errors.As(err, &open) && open.BreakerOpen() {
		return open.RetryAfter(), true
	}
	return 0, false
}
