package blocks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nuid"

	"github.com/sfblocks/sfblocks"
)

// Defaults of an [Executor].
const (
	// DefaultTimeout bounds a job that sets no timeout_ms.
	DefaultTimeout = 30 * time.Second
	// DefaultMaxTimeout is the largest timeout_ms a job may ask for.
	DefaultMaxTimeout = 5 * time.Minute
)

// Executor decodes and runs jobs. Create it with [NewExecutor]; it is safe
// for concurrent use and holds no per-job state.
type Executor struct {
	describeCache
	coalesceState
	accounts       Accounts
	maxJobBytes    int
	defaultTimeout time.Duration
	maxTimeout     time.Duration
	newID          func() string
	now            func() time.Time
}

// Option configures an [Executor]; each validates its argument and makes
// [NewExecutor] fail when it is out of range.
type Option func(*Executor) error

// WithMaxJobBytes sets the largest job accepted, in bytes. Defaults to
// [DefaultMaxJobBytes] (1 MiB); n must be positive.
func WithMaxJobBytes(n int) Option {
	return func(e *Executor) error {
		if n <= 0 {
			return fmt.Errorf("blocks: max job bytes %d must be positive", n)
		}
		e.maxJobBytes = n
		return nil
	}
}

// WithDefaultTimeout sets the deadline of jobs that set no timeout_ms.
// Defaults to [DefaultTimeout] (30 s); d must be positive and at most the
// maximum timeout.
func WithDefaultTimeout(d time.Duration) Option {
	return func(e *Executor) error {
		if d <= 0 {
			return fmt.Errorf("blocks: default timeout %v must be positive", d)
		}
		e.defaultTimeout = d
		return nil
	}
}

// WithMaxTimeout sets the largest timeout_ms a job may ask for. Defaults to
// [DefaultMaxTimeout] (5 min); d must be positive.
func WithMaxTimeout(d time.Duration) Option {
	return func(e *Executor) error {
		if d <= 0 {
			return fmt.Errorf("blocks: max timeout %v must be positive", d)
		}
		e.maxTimeout = d
		return nil
	}
}

// WithIDGenerator sets the function that names jobs sent without an id.
// Defaults to NATS's nuid (22 random base62 characters). It must be safe
// for concurrent use.
func WithIDGenerator(f func() string) Option {
	return func(e *Executor) error {
		if f == nil {
			return errors.New("blocks: nil ID generator")
		}
		e.newID = f
		return nil
	}
}

// WithClock sets the clock that measures Reply.DurationMS. Defaults to
// time.Now. Deadlines use the context's own clock.
func WithClock(now func() time.Time) Option {
	return func(e *Executor) error {
		if now == nil {
			return errors.New("blocks: nil clock")
		}
		e.now = now
		return nil
	}
}

// NewExecutor returns an executor that runs jobs with the clients of
// accounts. It fails when accounts is nil or an option is invalid.
func NewExecutor(accounts Accounts, opts ...Option) (*Executor, error) {
	if accounts == nil {
		return nil, errors.New("blocks: nil Accounts (use StaticAccounts)")
	}
	e := &Executor{
		accounts:       accounts,
		maxJobBytes:    DefaultMaxJobBytes,
		defaultTimeout: DefaultTimeout,
		maxTimeout:     DefaultMaxTimeout,
		newID:          nuid.Next,
		now:            time.Now,
	}
	e.coalesceCalls, e.gather, e.shareSearches = DefaultCoalesceCalls, DefaultGather, true
	for _, opt := range opts {
		if err := opt(e); err != nil {
			return nil, err
		}
	}
	if e.defaultTimeout > e.maxTimeout {
		return nil, fmt.Errorf("blocks: default timeout %v exceeds max timeout %v", e.defaultTimeout, e.maxTimeout)
	}
	return e, nil
}

// Job is a decoded, validated job, ready to [Executor.Run]. Its statement
// or record is fully built and its account resolved: running it needs no
// further checks.
type Job struct {
	// ID is the job's id, as sent or generated.
	ID string
	// Account is the account the job asked for; "" means the default.
	Account string
	// Block is the scenario block.
	Block sfblocks.Block
	// Timeout bounds the job's Salesforce calls.
	Timeout time.Duration

	idGiven     bool    // the job carried its own id
	acct        Account // resolved
	fingerprint string
	idempotent  bool // a plain create sent as an upsert on the idempotency field

	// search
	sosl       bool
	statement  string
	maxRecords int
	// insert
	object   string
	fields   map[string]any
	extField string
	extValue string
}

// plainCreate reports whether the job creates a record without an external
// ID: running it twice would create two records.
func (j *Job) plainCreate() bool { return j.Block == sfblocks.Insert && j.extField == "" }

// Identity returns the job's identity: block, account as the job names it,
// and id.
func (j *Job) Identity() sfblocks.JobIdentity {
	return sfblocks.JobIdentity{Block: j.Block, Account: j.Account, ID: j.ID}
}

// IDGiven reports whether the job carried its own id; a generated id names
// a job nobody can send again.
func (j *Job) IDGiven() bool { return j.idGiven }

// ResolvedAccount is the name of the account the job runs with (the
// default account resolved).
func (j *Job) ResolvedAccount() string { return j.acct.Name }

// Fingerprint identifies what the job asks of Salesforce: its block,
// account, and statement or record, with its variables substituted; not
// its id or timeout. Two jobs with one identity and different fingerprints
// are two different jobs that reuse an id. It is computed on first use
// (a synchronous search never needs it); not safe for concurrent first
// calls.
func (j *Job) Fingerprint() string {
	if j.fingerprint == "" {
		j.fingerprint = fingerprint(j)
	}
	return j.fingerprint
}

// Creates reports whether the job creates a record that nothing identifies
// (an Insert without external_id, on an account without an idempotency
// field): running it again after an attempt whose outcome is unknown could
// create a second record, so an earlier attempt must be reconciled first
// ([Executor.Reconcile]).
func (j *Job) Creates() bool { return j.plainCreate() }

// Writes reports whether the job writes to Salesforce (every Insert).
func (j *Job) Writes() bool { return j.Block == sfblocks.Insert }

// Statement returns a search job's SOQL or SOSL statement, with its
// variables substituted and escaped. It can hold customer data: do not
// log it.
func (j *Job) Statement() string { return j.statement }

// Decode parses and validates one job of block; it never calls Salesforce.
// A bad job gives an *Error with [sfblocks.CodeInvalidRequest] whose message names
// the offending key and says what to send instead.
func (e *Executor) Decode(block sfblocks.Block, payload []byte) (*Job, error) {
	return e.decode(block, payload, true)
}

// decodeUnscanned is Decode without the shape scan, for the fuzz test that
// checks the scan refuses nothing the decoder accepts.
func (e *Executor) decodeUnscanned(block sfblocks.Block, payload []byte) (*Job, error) {
	return e.decode(block, payload, false)
}

func (e *Executor) decode(block sfblocks.Block, payload []byte, scan bool) (*Job, error) {
	switch block {
	case sfblocks.Search:
		var r sfblocks.SearchRequest
		if err := decodeJob(block, payload, e.maxJobBytes, &r, scan); err != nil {
			return nil, err
		}
		job, err := e.header(block, r.ID, r.Account, r.TimeoutMS)
		if err != nil {
			return nil, err
		}
		if err := prepareSearch(job, &r); err != nil {
			return nil, err
		}
		return e.resolve(job)
	case sfblocks.Insert:
		var r sfblocks.InsertRequest
		if err := decodeJob(block, payload, e.maxJobBytes, &r, scan); err != nil {
			return nil, err
		}
		job, err := e.header(block, r.ID, r.Account, r.TimeoutMS)
		if err != nil {
			return nil, err
		}
		if err := prepareInsert(job, &r); err != nil {
			return nil, err
		}
		return e.resolve(job)
	}
	return nil, invalidf("unknown block %s; use search or insert", quoteName(string(block)))
}

// resolve looks the job's account up, turns a plain create into an upsert
// on the account's idempotency field, and fingerprints the job.
func (e *Executor) resolve(job *Job) (*Job, error) {
	acct, err := e.accounts.Lookup(job.Account)
	if err != nil {
		return nil, err
	}
	job.acct = acct
	if job.Block == sfblocks.Insert {
		if f := acct.IdempotencyField; f != "" {
			for name := range job.fields {
				if strings.EqualFold(name, f) {
					return nil, invalidf("field %s is account %s's idempotency field, which sfblocks sets itself; leave it out", quoteName(name), quoteName(acct.Name))
				}
			}
			if job.extField == "" {
				job.extField, job.extValue, job.idempotent = f, IdempotencyValue(job.Identity()), true
			}
		}
	}
	return job, nil
}

// header validates the keys common to every block.
func (e *Executor) header(block sfblocks.Block, id, account string, timeoutMS int64) (*Job, error) {
	if err := checkText("id", id, maxIDLen); err != nil {
		return nil, err
	}
	if err := checkText("account", account, maxIDLen); err != nil {
		return nil, err
	}
	given := id != ""
	if !given {
		id = e.newID()
	}
	timeout := e.defaultTimeout
	switch {
	case timeoutMS < 0:
		return nil, invalidf("timeout_ms must be positive")
	case timeoutMS > e.maxTimeout.Milliseconds():
		return nil, invalidf("timeout_ms %d is above the limit of %d", timeoutMS, e.maxTimeout.Milliseconds())
	case timeoutMS > 0:
		timeout = time.Duration(timeoutMS) * time.Millisecond
	}
	return &Job{ID: id, Account: account, Block: block, Timeout: timeout, idGiven: given}, nil
}

// Run executes a decoded job under ctx and the job's own deadline
// (Job.Timeout), and returns its reply: never nil, failures are in
// Reply.Status and Reply.Error. Run fills DurationMS; Attempt is left to
// the caller.
func (e *Executor) Run(ctx context.Context, job *Job) (reply *sfblocks.Reply) {
	start := e.now()
	if job == nil {
		return FailureReply(e.newID(), &sfblocks.Error{Code: sfblocks.CodeInternal, Message: "Run called with a nil job"})
	}
	defer func() {
		// A panicking SalesforceAPI must not take the worker down with it.
		if p := recover(); p != nil {
			// The panic value may quote the job's data: it stays in the
			// cause, which is never sent.
			reply = FailureReply(job.ID, &sfblocks.Error{Code: sfblocks.CodeInternal,
				Message: "internal error while running the job (a bug in sfblocks; the worker keeps running)",
				Err:     fmt.Errorf("panic: %v", p)})
		}
		if job.plainCreate() && reply.Status == sfblocks.StatusFailed && mayHaveCommitted(AsError(reply.Err)) {
			reply.Err = &maybeSaved{err: reply.Err}
		}
		reply.DurationMS = e.now().Sub(start).Milliseconds()
	}()
	acct := job.acct
	if acct.API == nil {
		// A Job built by hand, not by Decode.
		var err error
		if acct, err = e.accounts.Lookup(job.Account); err != nil {
			return FailureReply(job.ID, err)
		}
	}
	name := acct.Name
	var err error
	ctx, cancel := context.WithTimeout(ctx, job.Timeout)
	defer cancel()
	switch job.Block {
	case sfblocks.Search:
		reply, err = e.runSearch(ctx, acct, job)
	case sfblocks.Insert:
		reply, err = e.runInsert(ctx, acct, job)
	default:
		err = invalidf("unknown block %s; use search or insert", quoteName(string(job.Block)))
	}
	if err != nil {
		// A call cut short by the job's deadline can surface as another
		// error (a transport error that lost the cause); the deadline is the
		// truth then. An answer from Salesforce is kept as it came.
		be := AsError(err)
		// The deadline by the clock, not only by ctx.Err: a call made
		// under a context of its own with the same deadline (a shared
		// Search) may end a moment before ctx's timer fires.
		d, _ := ctx.Deadline()
		if (errors.Is(ctx.Err(), context.DeadlineExceeded) || !time.Now().Before(d)) &&
			(be.Code == sfblocks.CodeSalesforceUnavailable && be.ResultCode == 0 || be.Code == sfblocks.CodeInternal) {
			err = fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
		}
		reply = FailureReply(job.ID, err)
	}
	reply.ID = job.ID
	reply.Account = name
	return reply
}

// Handle decodes and runs one job. A job that fails to decode still gets a
// reply (status failed, INVALID_REQUEST) that echoes its id when the id
// could be read, or a generated one.
func (e *Executor) Handle(ctx context.Context, block sfblocks.Block, payload []byte) *sfblocks.Reply {
	job, err := e.Decode(block, payload)
	if err != nil {
		return FailureReply(e.salvageID(payload), err)
	}
	return e.Run(ctx, job)
}

// salvageID reads the id of a job that failed to decode, when it is a
// valid id; otherwise it generates one.
func (e *Executor) salvageID(payload []byte) string {
	if len(payload) <= e.maxJobBytes {
		var probe struct {
			ID json.RawMessage `json:"id"`
		}
		if json.Unmarshal(payload, &probe) == nil && len(probe.ID) > 0 {
			var id string
			if json.Unmarshal(probe.ID, &id) == nil && id != "" && checkText("id", id, maxIDLen) == nil {
				return id
			}
		}
	}
	return e.newID()
}
