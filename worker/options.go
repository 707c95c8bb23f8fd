package worker

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks"
)

// Defaults of the worker options.
const (
	// DefaultServiceName is the NATS micro service name shown by
	// `nats micro ls`.
	DefaultServiceName = "sfblocks"
	// DefaultVersion is the micro service version when none is configured.
	DefaultVersion = "0.0.0"
	// DefaultQueueGroup is the queue group shared by all workers.
	DefaultQueueGroup = "sfblocks"
	// DefaultMaxInFlight is the number of jobs one worker runs at once.
	DefaultMaxInFlight = 256
	// DefaultBacklogFactor sets the default backlog bound: jobs waiting for
	// a slot, per worker, when all in-flight slots are busy, as a multiple of
	// max in flight (see [WithMaxBacklog]).
	DefaultBacklogFactor = 4
	// DefaultPendingMsgs is the per-endpoint limit of received jobs the NATS
	// client holds before the endpoint handler takes them, past which it
	// reports a slow consumer. The handler never waits for a slot, so this
	// only fills when messages arrive faster than it can route them.
	DefaultPendingMsgs = 16 * DefaultMaxInFlight
	// DefaultPendingBytes is the per-endpoint byte limit of those jobs.
	DefaultPendingBytes = 64 << 20
	// DefaultDrainTimeout bounds how long [Worker.Stop] waits for jobs in
	// flight when its context has no earlier deadline.
	DefaultDrainTimeout = 30 * time.Second
)

// Option configures a [Worker]; each option validates its argument and
// [New] returns the error wrapped in [ErrInvalidOption].
type Option func(*config) error

type config struct {
	prefix       string
	name         string
	version      string
	description  string
	queueGroup   string
	maxInFlight  int
	pendingMsgs  int
	pendingBytes int
	backlog      int // -1: DefaultBacklogFactor × maxInFlight
	drainTimeout time.Duration
	abortGrace   time.Duration // tests shorten it
	onReceive    func()        // tests: called first by each endpoint handler
	log          zerolog.Logger
	metrics      *Metrics
	durable      *DurableConfig // nil: durable path off
	// landingWindow: see WithLandingWindow.
	landingWindow time.Duration
	// defaultJobTimeout is the deadline of a job of a plain Handler, which
	// says none of its own (a Planner's jobs carry theirs).
	defaultJobTimeout time.Duration
	// workerID names this worker in leases, run records and status.
	workerID string
	// replySubjects: see WithReplySubjects.
	replySubjects []string
	// accountShare: see WithAccountShare.
	accountShare int
	// budget: see WithBudget; nil: no API budget guard.
	budget *Budget
	// tracerProvider: see WithTracerProvider; nil: otel's global.
	tracerProvider trace.TracerProvider
}

func defaultConfig() config {
	return config{
		prefix:       sfblocks.DefaultPrefix,
		name:         DefaultServiceName,
		version:      DefaultVersion,
		description:  "sfblocks: Salesforce Search and Insert scenario blocks",
		queueGroup:   DefaultQueueGroup,
		maxInFlight:  DefaultMaxInFlight,
		pendingMsgs:  0, // derived from maxInFlight unless set
		pendingBytes: DefaultPendingBytes,
		backlog:      -1,
		drainTimeout: DefaultDrainTimeout,
		abortGrace:   defaultAbortGrace,
		log:          zerolog.Nop(),

		landingWindow:     DefaultLandingWindow,
		defaultJobTimeout: blocks.DefaultTimeout,
		replySubjects:     defaultReplySubjects,
	}
}

var (
	// A subject prefix or queue group: dot-separated tokens without
	// wildcards or whitespace.
	subjectRe = regexp.MustCompile(`^[^.\s*>]+(\.[^.\s*>]+)*$`)
	nameRe    = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	// The SemVer 2.0 pattern nats micro itself enforces.
	semverRe = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)
)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidOption}, args...)...)
}

// WithPrefix sets the subject prefix; jobs arrive on "<prefix>.search" and
// "<prefix>.insert". Defaults to "sfblocks". It must be one or more
// dot-separated tokens without wildcards or spaces.
func WithPrefix(prefix string) Option {
	return func(c *config) error {
		if !subjectRe.MatchString(prefix) {
			return invalid("prefix %q: use dot-separated tokens without '*', '>' or spaces, e.g. %q", prefix, sfblocks.DefaultPrefix)
		}
		c.prefix = prefix
		return nil
	}
}

// WithServiceName sets the NATS micro service name. Defaults to "sfblocks".
// Letters, digits, '-' and '_' only.
func WithServiceName(name string) Option {
	return func(c *config) error {
		if !nameRe.MatchString(name) {
			return invalid("service name %q: use letters, digits, '-' and '_' only", name)
		}
		c.name = name
		return nil
	}
}

// WithVersion sets the micro service version (a SemVer such as "1.2.3",
// usually the build version). Defaults to "0.0.0". A leading "v" is removed.
func WithVersion(version string) Option {
	return func(c *config) error {
		v := strings.TrimPrefix(version, "v")
		if !semverRe.MatchString(v) {
			return invalid("version %q: must be a SemVer such as 1.2.3", version)
		}
		c.version = v
		return nil
	}
}

// WithDescription sets the micro service description shown by
// `nats micro info`.
func WithDescription(description string) Option {
	return func(c *config) error {
		c.description = description
		return nil
	}
}

// WithQueueGroup sets the queue group all endpoints join. Workers in the same
// group share jobs (each job goes to one of them). Defaults to "sfblocks".
func WithQueueGroup(group string) Option {
	return func(c *config) error {
		if !subjectRe.MatchString(group) {
			return invalid("queue group %q: use tokens without '*', '>' or spaces", group)
		}
		c.queueGroup = group
		return nil
	}
}

// WithMaxInFlight sets how many jobs the worker runs at once (1..65536).
// Defaults to 256. When the limit is reached, further synchronous jobs wait
// in the worker's backlog until a job finishes, and past the backlog bound
// they are refused at once (see [WithMaxBacklog]).
func WithMaxInFlight(n int) Option {
	return func(c *config) error {
		if n < 1 || n > 65536 {
			return invalid("max in flight %d: must be between 1 and 65536", n)
		}
		c.maxInFlight = n
		return nil
	}
}

// WithMaxBacklog bounds how many synchronous jobs may wait for a slot when
// all in-flight slots are busy (0..1048576; 0 refuses every job that cannot
// start at once). Defaults to [DefaultBacklogFactor] × max in flight (1024
// with the defaults). Waiting jobs start in arrival order as slots free up;
// a job arriving when the backlog is full is answered at once, without
// running, with a retryable SALESFORCE_UNAVAILABLE failure saying the worker
// is saturated (retry it, or add workers), and counted in
// sfblocks_worker_overloaded_total: overload is never a silent drop.
func WithMaxBacklog(n int) Option {
	return func(c *config) error {
		if n < 0 || n > 1<<20 {
			return invalid("max backlog %d: must be between 0 and 1048576", n)
		}
		c.backlog = n
		return nil
	}
}

// WithPendingLimits sets, per endpoint, how many received jobs (msgs) and
// bytes the NATS client may hold before the endpoint handler takes them.
// The handler never waits for a slot (see [WithMaxBacklog]), so these fill
// only when jobs arrive faster than it routes them. Past either limit the
// client drops new messages (their callers time out) and reports a slow
// consumer, which the worker logs and counts. Defaults to 16 × max in
// flight messages and 64 MiB. Both must be positive.
func WithPendingLimits(msgs, bytes int) Option {
	return func(c *config) error {
		if msgs < 1 || bytes < 1 {
			return invalid("pending limits %d msgs / %d bytes: both must be positive", msgs, bytes)
		}
		c.pendingMsgs, c.pendingBytes = msgs, bytes
		return nil
	}
}

// WithDrainTimeout bounds the graceful part of [Worker.Stop] and
// [Worker.Run]: jobs still running after it are answered with a retryable
// TIMEOUT failure. Defaults to 30s. Must be positive.
func WithDrainTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return invalid("drain timeout %v: must be positive", d)
		}
		c.drainTimeout = d
		return nil
	}
}

// WithLogger sets the logger. Defaults to a disabled logger. The worker logs
// one info event per job outcome and never logs record values above debug.
func WithLogger(log zerolog.Logger) Option {
	return func(c *config) error {
		c.log = log
		return nil
	}
}

// WithMetrics sets the Prometheus collectors the worker updates (see
// [NewMetrics]). Defaults to collectors registered nowhere.
func WithMetrics(m *Metrics) Option {
	return func(c *config) error {
		if m == nil {
			return invalid("metrics: nil (omit the option to disable metrics)")
		}
		c.metrics = m
		return nil
	}
}

// WithLandingWindow sets how long after an Insert attempt's deadline its
// record may still appear in Salesforce: Salesforce can commit a request
// its client already gave up on. An Insert whose earlier attempt left no
// record that can be found is created again only once this has passed
// (reconciliation may find it until then). Defaults to
// [DefaultLandingWindow] (1m); at least 1s.
func WithLandingWindow(d time.Duration) Option {
	return func(c *config) error {
		if d < time.Second {
			return invalid("landing window %v: must be at least 1s", d)
		}
		c.landingWindow = d
		return nil
	}
}

// WithWorkerID sets the name this worker gives itself in job leases, run
// records and status reports. Defaults to "<hostname>-<pid>-<random>":
// unique per process, so a restarted worker is never taken for the one
// that died.
func WithWorkerID(id string) Option {
	return func(c *config) error {
		if id == "" || len(id) > 128 || !printable(id) {
			return invalid("worker id %q: 1 to 128 printable characters", id)
		}
		c.workerID = id
		return nil
	}
}

// WithBudget makes the durable path keep each account's API reserve for
// synchronous jobs: while b says an account's usage is in its reserve, the
// account's durable jobs are parked, using no attempt, and resume by
// themselves once usage falls below it. Synchronous jobs are never held
// back. Without it, durable jobs run until Salesforce refuses them.
func WithBudget(b *Budget) Option {
	return func(c *config) error {
		c.budget = b
		return nil
	}
}
