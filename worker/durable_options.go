package worker

import (
	"fmt"
	"regexp"
	"time"

	"github.com/sfblocks/sfblocks"
)

// Defaults of [DurableConfig].
const (
	// DefaultResultsTTL is how long a finished job's result is kept.
	DefaultResultsTTL = 24 * time.Hour
	// DefaultDuplicateWindow is the stream's window within which a second
	// publish with the same Nats-Msg-Id (the job id) is dropped.
	DefaultDuplicateWindow = 2 * time.Minute
	// DefaultAckWait is how long JetStream waits for a worker's ack (or
	// progress signal) before redelivering a job to another worker. Running
	// jobs send a progress signal every AckWait/3, so it only bounds how
	// soon the jobs of a dead worker are taken over.
	DefaultAckWait = 30 * time.Second
	// DefaultMaxDeliver is the consumers' MaxDeliver: -1, unlimited, so
	// that the worker's own attempt count (MaxAttempts) governs retries. A
	// delivery that called nothing (e.g. an open circuit breaker) is
	// delivered again without using an attempt, so deliveries can outnumber
	// attempts by far.
	DefaultMaxDeliver = -1
	// DefaultMaxAttempts is how many times a durable job runs at most when
	// it keeps failing with a retryable error.
	DefaultMaxAttempts = 5
	// DefaultRetryBackoff is the wait before the second attempt; each
	// further attempt waits twice as long (with jitter), up to
	// DefaultMaxRetryBackoff.
	DefaultRetryBackoff = time.Second
	// DefaultMaxRetryBackoff bounds the wait between two attempts.
	DefaultMaxRetryBackoff = time.Minute
	// DefaultDLQMaxAge is how long a dead letter is kept.
	DefaultDLQMaxAge = 30 * 24 * time.Hour
	// DefaultFleetSize is the number of workers assumed when sizing
	// MaxAckPending: MaxAckPending = FleetSize × max in flight.
	DefaultFleetSize = 8
	// DefaultBatch is the most messages one pull asks for; a pull never asks
	// for more messages than the worker has free in-flight slots.
	DefaultBatch = 16
	// DefaultFetchWait is how long an idle pull waits for a job; it bounds
	// how long [Worker.Stop] waits before the fetch loops have stopped.
	DefaultFetchWait = time.Second
	// DefaultSetupTimeout bounds the creation of the stream, consumers and
	// results bucket at [Worker.Start].
	DefaultSetupTimeout = 30 * time.Second
)

// DurableConfig configures the durable path, turned on with [WithDurable].
// Its zero value works: every field has a default. Every worker of a fleet
// creates or updates the same stream and consumers at start, so give them
// all the same config: the last one started wins.
type DurableConfig struct {
	// Stream is the work-queue stream (file storage) capturing
	// "<prefix>.jobs.search" and "<prefix>.jobs.insert". Defaults to
	// "SFBLOCKS_JOBS". Fleets with different prefixes on one NATS account
	// need different stream names. One durable pull consumer per block,
	// named "search" and "insert", is shared by every worker.
	Stream string
	// ResultsBucket is the KV bucket (file storage) keeping finished jobs'
	// results. Defaults to "sfblocks_results".
	ResultsBucket string
	// ResultsTTL is how long a result is kept; a job delivered again within
	// it is answered with the kept result and never runs twice. Defaults to
	// 24h.
	ResultsTTL time.Duration
	// DuplicateWindow is the stream's duplicate window for Nats-Msg-Id.
	// Defaults to 2m; at most ResultsTTL.
	DuplicateWindow time.Duration
	// AckWait is the consumers' ack wait. Defaults to 30s; at least 1s.
	AckWait time.Duration
	// MaxDeliver is the consumers' MaxDeliver, the most deliveries of one
	// job. Defaults to -1 (unlimited): retries are governed by MaxAttempts,
	// counted by the worker itself, because deliveries that called nothing
	// (breaker open, results bucket unreadable) use no attempt. When set, it
	// must be at least MaxAttempts; a job reaching it is dead-lettered.
	MaxDeliver int
	// MaxAttempts is the most runs of a job failing with a retryable error
	// (error.retryable true: UNABLE_TO_LOCK_ROW, 5xx, timeouts, rate
	// limits); then it is dead-lettered. Permanent failures are never
	// retried. Defaults to 5; 1 turns retries off.
	MaxAttempts int
	// RetryBackoff is the wait before the second attempt; attempt n waits
	// RetryBackoff×2^(n-2), between half and all of it at random (jitter),
	// at most MaxRetryBackoff. Defaults to 1s.
	RetryBackoff time.Duration
	// MaxRetryBackoff bounds the wait between attempts. Defaults to 1m.
	MaxRetryBackoff time.Duration
	// ParkedStream is the work-queue stream of durable jobs waiting for
	// their account (see parking.go). Defaults to "SFBLOCKS_PARKED".
	ParkedStream string
	// ClaimsBucket is the KV bucket (file storage, per-key TTL) holding the
	// lease of each job being attempted. Defaults to "sfblocks_claims".
	ClaimsBucket string
	// PayloadsBucket is the object store keeping the payloads of dead
	// letters too large to carry them inline. Defaults to
	// "sfblocks_dlq_payloads".
	PayloadsBucket string
	// AttemptsBucket is the KV bucket (file storage, TTL ResultsTTL) keeping
	// the failure state of jobs being retried. Defaults to
	// "sfblocks_attempts".
	AttemptsBucket string
	// DLQStream is the dead-letter stream (file storage, limits retention,
	// one message per subject "<prefix>.dlq.<block>.<job key>", so a job has
	// at most one dead letter, its newest). Defaults to "SFBLOCKS_DLQ".
	DLQStream string
	// DLQMaxAge is how long dead letters are kept. Defaults to 30 days.
	DLQMaxAge time.Duration
	// DLQMaxMsgs and DLQMaxBytes cap the dead-letter stream; 0 means no
	// cap. With a cap the stream discards new messages when full, so
	// dead-lettering fails loudly and the job is handed back (nak) to be
	// tried again later: a dead letter is never dropped silently.
	DLQMaxMsgs  int64
	DLQMaxBytes int64
	// DLQSyncSearches also dead-letters failed synchronous Searches (the
	// micro path). Failed synchronous Inserts, other than INVALID_REQUEST,
	// are always dead-lettered. Defaults to false.
	DLQSyncSearches bool
	// MaxAckPending caps the jobs delivered and not yet acked per consumer
	// across the fleet. Defaults to FleetSize × the worker's max in flight
	// (8 × 256 = 2048 with the defaults), so it never throttles a fleet of
	// that size; each worker already pulls only as many jobs as it has free
	// slots.
	MaxAckPending int
	// FleetSize is the expected number of workers, used only to derive
	// MaxAckPending. Defaults to 8.
	FleetSize int
	// Batch is the most messages pulled at once. Defaults to 16.
	Batch int
	// FetchWait is how long an idle pull waits for a job. Defaults to 1s.
	FetchWait time.Duration
	// Replicas is the replica count of every stream and bucket the fleet
	// creates (jobs, parked and dead-letter streams; results, attempts and
	// claims buckets; the dead-letter payloads store) on a JetStream
	// cluster: 3 keeps them writable with one node down, 5 with two. It
	// must not exceed the cluster's size (a single server takes 1 only):
	// the worker fails at start saying so. Like every fleet setting it
	// applies to what the worker creates; an existing stream keeps its
	// count until 'sfblocks fleet apply --replicas N'. Defaults to 1.
	Replicas int
	// FailoverWindow bounds how long one JetStream operation (a ledger
	// read or write, a claim, a dead letter, an ack) is retried across a
	// cluster's leader change before it fails naming the cluster state;
	// see failover.go. Defaults to [DefaultFailoverWindow] (20s).
	FailoverWindow time.Duration
	// SharedBuckets are other KV buckets of the fleet (the token, status
	// and budget buckets) whose replica count [CheckFleet] compares with
	// Replicas and [ApplyFleet] changes; their other settings belong to
	// their own packages, and a worker never touches them. Defaults to
	// none.
	SharedBuckets []string
	// SetupTimeout bounds creating the stream, consumers and bucket at
	// start. Defaults to 30s.
	SetupTimeout time.Duration
}

var jsNameRe = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// withDefaults fills the zero fields and validates the result.
func (c DurableConfig) withDefaults(maxInFlight int) (DurableConfig, error) {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	defInt := func(n *int, v int) {
		if *n == 0 {
			*n = v
		}
	}
	if c.Stream == "" {
		c.Stream = sfblocks.DefaultJobsStream
	}
	if c.ResultsBucket == "" {
		c.ResultsBucket = sfblocks.DefaultResultsBucket
	}
	if c.AttemptsBucket == "" {
		c.AttemptsBucket = sfblocks.DefaultAttemptsBucket
	}
	if c.ParkedStream == "" {
		c.ParkedStream = DefaultParkedStream
	}
	if c.ClaimsBucket == "" {
		c.ClaimsBucket = DefaultClaimsBucket
	}
	if c.PayloadsBucket == "" {
		c.PayloadsBucket = DefaultPayloadsBucket
	}
	if c.DLQStream == "" {
		c.DLQStream = sfblocks.DefaultDLQStream
	}
	def(&c.DLQMaxAge, DefaultDLQMaxAge)
	def(&c.RetryBackoff, DefaultRetryBackoff)
	def(&c.MaxRetryBackoff, DefaultMaxRetryBackoff)
	defInt(&c.MaxAttempts, DefaultMaxAttempts)
	def(&c.ResultsTTL, DefaultResultsTTL)
	def(&c.DuplicateWindow, DefaultDuplicateWindow)
	def(&c.AckWait, DefaultAckWait)
	def(&c.FetchWait, DefaultFetchWait)
	def(&c.SetupTimeout, DefaultSetupTimeout)
	def(&c.FailoverWindow, DefaultFailoverWindow)
	defInt(&c.MaxDeliver, DefaultMaxDeliver)
	defInt(&c.FleetSize, DefaultFleetSize)
	defInt(&c.Batch, DefaultBatch)
	defInt(&c.Replicas, 1)
	defInt(&c.MaxAckPending, c.FleetSize*maxInFlight)
	switch {
	case !jsNameRe.MatchString(c.Stream):
		return c, invalid("durable stream %q: use letters, digits, '-' and '_' only", c.Stream)
	case !jsNameRe.MatchString(c.ResultsBucket):
		return c, invalid("results bucket %q: use letters, digits, '-' and '_' only", c.ResultsBucket)
	case c.ResultsTTL < time.Second:
		return c, invalid("results TTL %v: must be at least 1s", c.ResultsTTL)
	case c.DuplicateWindow < 0 || c.DuplicateWindow > c.ResultsTTL:
		return c, invalid("duplicate window %v: must be positive and at most the results TTL %v", c.DuplicateWindow, c.ResultsTTL)
	case c.AckWait < time.Second:
		return c, invalid("ack wait %v: must be at least 1s", c.AckWait)
	case c.MaxAttempts < 1 || c.MaxAttempts > 100:
		return c, invalid("max attempts %d: must be between 1 and 100", c.MaxAttempts)
	case c.MaxDeliver != -1 && c.MaxDeliver < c.MaxAttempts:
		return c, invalid("max deliver %d: must be -1 (unlimited, the default) or at least max attempts %d", c.MaxDeliver, c.MaxAttempts)
	case c.RetryBackoff < time.Millisecond || c.MaxRetryBackoff < c.RetryBackoff:
		return c, invalid("retry backoff %v / max %v: must be at least 1ms, and the max at least the backoff", c.RetryBackoff, c.MaxRetryBackoff)
	case !jsNameRe.MatchString(c.ParkedStream) || c.ParkedStream == c.Stream || c.ParkedStream == c.DLQStream:
		return c, invalid("parked stream %q: use letters, digits, '-' and '_' only, and another name than the jobs and dead-letter streams", c.ParkedStream)
	case !jsNameRe.MatchString(c.ClaimsBucket) || !jsNameRe.MatchString(c.PayloadsBucket):
		return c, invalid("claims bucket %q / payloads bucket %q: use letters, digits, '-' and '_' only", c.ClaimsBucket, c.PayloadsBucket)
	case !jsNameRe.MatchString(c.AttemptsBucket):
		return c, invalid("attempts bucket %q: use letters, digits, '-' and '_' only", c.AttemptsBucket)
	case !jsNameRe.MatchString(c.DLQStream) || c.DLQStream == c.Stream:
		return c, invalid("dead-letter stream %q: use letters, digits, '-' and '_' only, and another name than the jobs stream", c.DLQStream)
	case c.DLQMaxAge < time.Minute:
		return c, invalid("dead-letter max age %v: must be at least 1m", c.DLQMaxAge)
	case c.DLQMaxMsgs < 0 || c.DLQMaxBytes < 0:
		return c, invalid("dead-letter max messages %d / bytes %d: must be 0 (no cap) or positive", c.DLQMaxMsgs, c.DLQMaxBytes)
	case c.FleetSize < 1 || c.MaxAckPending < 1:
		return c, invalid("fleet size %d / max ack pending %d: must be positive", c.FleetSize, c.MaxAckPending)
	case c.Batch < 1 || c.Batch > 1024:
		return c, invalid("batch %d: must be between 1 and 1024", c.Batch)
	case c.FetchWait < 100*time.Millisecond || c.FetchWait > time.Minute:
		return c, invalid("fetch wait %v: must be between 100ms and 1m", c.FetchWait)
	case c.Replicas < 1 || c.Replicas > 5:
		return c, invalid("replicas %d: must be between 1 and 5", c.Replicas)
	case c.SetupTimeout < 0:
		return c, invalid("setup timeout %v: must be positive", c.SetupTimeout)
	case c.FailoverWindow < time.Second || c.FailoverWindow > 10*time.Minute:
		return c, invalid("failover window %v: must be between 1s and 10m", c.FailoverWindow)
	}
	return c, nil
}

// WithDurable turns on the durable path: besides the micro endpoints, the
// worker pulls jobs from the JetStream work-queue stream (see
// [DurableConfig]), sharing the in-flight limit, handler, logging and
// metrics with them. [Worker.Start] then creates or updates the stream, the
// consumers and the results bucket, and fails when JetStream is not
// available. Defaults to off. Invalid fields make [New] fail with
// [ErrInvalidOption].
func WithDurable(cfg DurableConfig) Option {
	return func(c *config) error {
		cp := cfg
		c.durable = &cp
		return nil
	}
}

// String summarises the config for logs.
func (c DurableConfig) String() string {
	return fmt.Sprintf("stream=%s bucket=%s ttl=%v dup=%v ack_wait=%v max_deliver=%d max_ack_pending=%d batch=%d max_attempts=%d backoff=%v..%v dlq=%s dlq_max_age=%v",
		c.Stream, c.ResultsBucket, c.ResultsTTL, c.DuplicateWindow, c.AckWait, c.MaxDeliver, c.MaxAckPending, c.Batch,
		c.MaxAttempts, c.RetryBackoff, c.MaxRetryBackoff, c.DLQStream, c.DLQMaxAge)
}
