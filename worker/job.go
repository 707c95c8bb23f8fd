package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks"
)

// Handler runs one job and returns its reply. Handle must be safe for
// concurrent use, must never return nil (a nil reply is answered as an
// INTERNAL failure) and should return soon after ctx is cancelled. ctx is
// cancelled only on a hard shutdown (drain timeout expired); the job's own
// deadline is the handler's business.
//
// A Handler that is also a [Planner] (as *blocks.Executor is) gets the
// worker's exactly-once guarantees for Inserts: the worker decodes the job
// first, keys it by its identity, claims it before any Salesforce write and
// reconciles an earlier attempt that may have saved a record. A plain
// Handler is run as it is, keyed by the id in its payload.
type Handler interface {
	Handle(ctx context.Context, block sfblocks.Block, payload []byte) *sfblocks.Reply
}

// HandlerFunc adapts a function to [Handler].
type HandlerFunc func(ctx context.Context, block sfblocks.Block, payload []byte) *sfblocks.Reply

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, block sfblocks.Block, payload []byte) *sfblocks.Reply {
	return f(ctx, block, payload)
}

// Planner is what the worker asks of a handler that knows what jobs mean;
// *blocks.Executor satisfies it.
type Planner interface {
	Handler
	// Decode parses and validates a job without calling Salesforce.
	Decode(block sfblocks.Block, payload []byte) (*blocks.Job, error)
	// Run runs a decoded job under ctx and its own deadline.
	Run(ctx context.Context, job *blocks.Job) *sfblocks.Reply
	// Reconcile looks for the record an earlier attempt of a job that
	// Creates may have made, between from and to.
	Reconcile(ctx context.Context, job *blocks.Job, from, to time.Time) (blocks.Reconciliation, error)
}

var _ Planner = (*blocks.Executor)(nil)

// task is one job as the worker handles it, whichever kind of handler runs
// it.
type task struct {
	block    sfblocks.Block
	identity sfblocks.JobIdentity
	// account is the account the job runs with (the default resolved).
	account     string
	fingerprint string
	timeout     time.Duration
	// idGiven: the job carried its own id (on the synchronous path, a job
	// with a generated id cannot be sent again, so it is not kept).
	idGiven bool
	// writes: the job writes to Salesforce and is claimed first.
	writes bool
	// readOnly: the job is known not to write (a planned Search); a plain
	// handler's job may write whatever its block, so it is never readOnly.
	readOnly bool
	// creates: a repeat could create a second record, so an earlier
	// attempt must be reconciled first.
	creates bool
	// invalid is the reply of a job that does not decode.
	invalid *sfblocks.Reply
	run     func(ctx context.Context) *sfblocks.Reply
	// reconcile is set for jobs that create.
	reconcile func(ctx context.Context, from, to time.Time) (blocks.Reconciliation, error)
	// trace is the span context of the run, for its dead letter.
	trace trace.SpanContext
}

// plan turns a job received on path into a task. idHint is the id to key
// the job by when its payload has none of its own (a durable job's headers
// or stream sequence); "" lets the handler generate one.
func (w *Worker) plan(path string, block sfblocks.Block, payload []byte, idHint string) *task {
	if p, ok := w.h.(Planner); ok {
		return w.planned(p, path, block, payload, idHint)
	}
	// A plain handler: the job is keyed by the id and account in its
	// payload and run as it is.
	id, account := payloadIdentity(payload)
	t := &task{block: block, idGiven: id != "", timeout: w.cfg.defaultJobTimeout}
	if id == "" {
		id = idHint
	}
	t.identity = sfblocks.JobIdentity{Block: block, Account: account, ID: id}
	t.account = account
	if path == sfblocks.PathDurable {
		sum := sha256.Sum256(payload)
		t.fingerprint = hex.EncodeToString(sum[:16])
	}
	t.run = func(ctx context.Context) *sfblocks.Reply { return w.h.Handle(ctx, block, payload) }
	return t
}

func (w *Worker) planned(p Planner, path string, block sfblocks.Block, payload []byte, idHint string) *task {
	job, err := p.Decode(block, payload)
	if err != nil {
		id, account := payloadIdentity(payload)
		given := id != ""
		if id == "" {
			id = idHint
		}
		if id == "" {
			id = newJobID()
		}
		return &task{block: block, identity: sfblocks.JobIdentity{Block: block, Account: account, ID: id}, idGiven: given,
			invalid: blocks.FailureReply(id, err), timeout: w.cfg.defaultJobTimeout}
	}
	if !job.IDGiven() && idHint != "" {
		job.ID = idHint
	}
	t := &task{
		block:    block,
		identity: job.Identity(),
		account:  job.ResolvedAccount(),
		timeout:  job.Timeout,
		idGiven:  job.IDGiven(),
		writes:   job.Writes(),
		readOnly: !job.Writes(),
		creates:  job.Creates(),
		run:      func(ctx context.Context) *sfblocks.Reply { return p.Run(ctx, job) },
	}
	if t.writes || path == sfblocks.PathDurable {
		// Only a tracked job compares fingerprints: a synchronous search
		// never pays for one.
		t.fingerprint = job.Fingerprint()
	}
	if t.creates {
		t.reconcile = func(ctx context.Context, from, to time.Time) (blocks.Reconciliation, error) {
			return p.Reconcile(ctx, job, from, to)
		}
	}
	return t
}

// payloadIdentity reads the id and account of a job that may not decode,
// when they are valid; "" otherwise.
func payloadIdentity(data []byte) (id, account string) {
	var p struct {
		ID      string `json:"id"`
		Account string `json:"account"`
	}
	if json.Unmarshal(data, &p) != nil {
		return payloadID(data), ""
	}
	if !validText(p.ID) {
		p.ID = ""
	}
	if !validText(p.Account) {
		p.Account = ""
	}
	return p.ID, p.Account
}

func validText(s string) bool { return len(s) <= 128 && printable(s) }
