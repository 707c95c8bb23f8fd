package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nuid"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks"
)

// How a job that writes to Salesforce runs exactly once, on either path
// (see ledger.go for where the state lives):
//
//  1. A kept result answers the job: it already finished. A kept result or
//     a lease of another job that reuses the id (another fingerprint) is a
//     conflict, answered INVALID_REQUEST and never with the other job's
//     result.
//  2. The worker takes the job's lease (a KV key with a TTL the server
//     enforces). If another run holds it, this one does not run: a durable
//     delivery waits for it, a synchronous request waits for its result.
//  3. A run record left by an earlier attempt says that attempt may have
//     created the record. The earlier attempt is reconciled first: one
//     matching record is adopted as the job's; several are dead-lettered
//     as ambiguous_create with the candidates; none means either the
//     attempt can still land (the job waits until it cannot) or it never
//     will (the job creates now).
//  4. The attempt writes its run record, then calls Salesforce with a
//     deadline inside its lease: a worker cut off from NATS never calls
//     past its claim.
//  5. A failure that may have saved the record is reconciled at once, as in
//     3. A failure that proves nothing was saved clears the run record.
//
// Jobs whose repeat cannot duplicate (upserts, including creates sent as
// upserts on an account's idempotency field) take the lease but keep no run
// record and are never reconciled.

// Defaults of the exactly-once machinery.
const (
	// DefaultLandingWindow is how long after an attempt's deadline its
	// record may still appear in Salesforce (a request the client gave up
	// on can still commit): a create whose earlier attempt found nothing is
	// not repeated before then.
	DefaultLandingWindow = time.Minute
	// leaseMargin is how much longer a lease lives than the job's deadline:
	// the attempt's Salesforce call ends at its deadline, measured from
	// before the lease was asked for, so the lease outlives it.
	leaseMargin = 5 * time.Second
)

// verdictKind says what became of one run of a task.
type verdictKind int

const (
	// verdictDone: the job ran (or was decided); reply is its outcome.
	verdictDone verdictKind = iota
	// verdictKept: reply is the kept result of an earlier run.
	verdictKept
	// verdictBusy: another run holds the job's lease; nothing ran.
	verdictBusy
	// verdictPending: an earlier attempt may still create the record;
	// nothing ran, wait delay.
	verdictPending
	// verdictAmbiguous: several records may be the job's; reply is the
	// failure to dead-letter with candidates.
	verdictAmbiguous
	// verdictUnavailable: the ledger cannot be read or written; nothing
	// ran.
	verdictUnavailable
	// verdictConflict: another job already used this job's id; reply is
	// the INVALID_REQUEST to answer. Nothing ran, and nothing of the other
	// job's is touched: the reply is neither kept nor answers for it.
	verdictConflict
	// verdictNotStarted: the worker did not start a synchronous job
	// (its deadline passed in the backlog, NATS is down, its account holds
	// its share); reply is the retryable refusal.
	verdictNotStarted
)

// verdict is the outcome of [Worker.runTask].
type verdict struct {
	kind  verdictKind
	reply *sfblocks.Reply
	// delay before trying again, for busy and pending.
	delay time.Duration
	// candidates of an ambiguous create.
	candidates []string
	// st is the job's failure history as it stands after this run.
	st failureState
	// err explains an unavailable ledger.
	err error
}

// runOpts is what the caller knows of this run.
type runOpts struct {
	path    string
	attempt int
	// replay: the job was replayed from a dead letter; a kept failure does
	// not answer it (it really runs again).
	replay bool
	// hist is the job's history when the caller already read it.
	hist *history
	// fresh: the first delivery of a durable job that is not a replay.
	// Before it, only a job published again with the same id (past the
	// stream's duplicate window) or another job reusing its id can have
	// kept a result. A read-only job does not look for one, since running
	// it again is harmless: it runs, and [ledger.keep] finds the earlier
	// result (a success answers it, a failure is replaced) or the other
	// job's (a conflict). That saves one KV read per durable Search.
	fresh bool
}

// tracked reports whether the ledger keeps this task: every durable job,
// and synchronous Inserts that carry their own id (a retried request must
// find its first run). Synchronous Searches are not kept: running one again
// is harmless, and keeping it would cost every call a KV write.
func (w *Worker) tracked(t *task, path string) bool {
	if w.durable == nil || w.durable.ledger == nil || t.invalid != nil {
		return false
	}
	return path == sfblocks.PathDurable || (t.writes && t.idGiven)
}

// runTask runs t once, with the exactly-once steps above for tracked
// tasks. ctx is the worker's base context (cancelled at a hard shutdown);
// bookkeeping never uses it directly.
func (w *Worker) runTask(ctx context.Context, t *task, o runOpts) verdict {
	if t.invalid != nil {
		return verdict{kind: verdictDone, reply: t.invalid}
	}
	if !w.tracked(t, o.path) {
		return verdict{kind: verdictDone, reply: w.call(ctx, t, time.Time{})}
	}
	return w.runTracked(ctx, t, o)
}

// runTracked is runTask for a task the ledger keeps. It is a function of
// its own so that its frame (about 700 bytes) is not on the stack of an
// untracked call (see pool.go).
func (w *Worker) runTracked(ctx context.Context, t *task, o runOpts) verdict {
	l := w.durable.ledger
	key := t.identity.Key()
	var st failureState
	if o.hist != nil {
		st = o.hist.failureState
	}
	if t.readOnly && o.fresh {
		return verdict{kind: verdictDone, reply: w.call(ctx, t, time.Time{}), st: st}
	}
	if !t.writes {
		k, err := l.result(ctx, key)
		if err != nil {
			return verdict{kind: verdictUnavailable, err: err}
		}
		if v, answered := w.judgeKept(t, k, o); answered {
			return v
		}
		return verdict{kind: verdictDone, reply: w.call(ctx, t, time.Time{}), st: st}
	}

	// The kept result is looked up while the lease is taken: neither
	// depends on the other, and a job that writes pays one round trip for
	// both. A result kept after the lookup by a run whose lease has ended
	// is not missed for good: that run's record is in the history read
	// below, and reconciling it adopts its record.
	start := time.Now()
	type lookup struct {
		k   *kept
		err error
	}
	found := make(chan lookup, 1)
	go func() {
		k, err := l.result(ctx, key)
		found <- lookup{k, err}
	}()
	c, err := l.claim(ctx, key, lease{Worker: w.id, Attempt: o.attempt, TimeoutMS: t.timeout.Milliseconds(), Fingerprint: t.fingerprint},
		t.timeout+leaseMargin)
	kr := <-found
	release := func() { l.release(ctx, key, c.revision) }
	switch {
	case kr.err != nil:
		release() // a no-op when the claim failed too
		return verdict{kind: verdictUnavailable, err: kr.err}
	case err != nil:
		return verdict{kind: verdictUnavailable, err: err}
	}
	if v, answered := w.judgeKept(t, kr.k, o); answered {
		release()
		return v
	}
	if c.holder != nil {
		if conflict(c.holder.Fingerprint, t.fingerprint) && !o.replay {
			w.m.Claimed.WithLabelValues("conflict").Inc()
			return verdict{kind: verdictConflict, reply: conflictReply(t)}
		}
		if o.path == sfblocks.PathDurable {
			w.m.Claimed.WithLabelValues("busy").Inc()
		}
		wait := time.Duration(c.holder.TimeoutMS)*time.Millisecond + leaseMargin
		return verdict{kind: verdictBusy, delay: min(max(wait/4, 250*time.Millisecond), 5*time.Second)}
	}
	w.m.Claimed.WithLabelValues("taken").Inc()

	if t.creates {
		var v verdict
		var proceed bool
		st, v, proceed = w.beginCreate(ctx, t, o, c)
		if !proceed {
			if v.kind != verdictDone || v.reply.Status == sfblocks.StatusFailed {
				release()
			}
			return v
		}
	}

	reply := w.call(ctx, t, start.Add(t.timeout))
	switch {
	case reply.Status != sfblocks.StatusFailed:
		// The lease is left to expire: a job sent again finds the result
		// first. The run record stays too; the result supersedes it.
		return verdict{kind: verdictDone, reply: reply, st: st}
	case t.creates && blocks.MayHaveSaved(reply):
		if ctx.Err() != nil {
			// Cut short by a hard shutdown: no time to reconcile. The run
			// record stays for whoever runs the job next.
			release()
			return verdict{kind: verdictDone, reply: reply, st: st}
		}
		v := w.reconcileOwn(ctx, t, reply, start)
		v.st = st
		if v.kind != verdictDone || v.reply.Status == sfblocks.StatusFailed {
			release()
		}
		return v
	}
	// Nothing was saved: a later attempt (a retry, a replay) may create
	// without reconciling, so the run record goes now, whatever settles
	// the job next.
	if st.Running != nil {
		st.Running = nil
		if err := l.record(ctx, key, st, w.bookkeepingDeadline()); err != nil {
			w.log.Warn().Err(err).Str("job_id", t.identity.ID).Msg("could not clear the run record of an attempt that saved nothing; the next run will reconcile it")
		}
	}
	release()
	return verdict{kind: verdictDone, reply: reply, st: st}
}

// judgeKept decides a job by its kept result k (nil: none): answered is
// true when k answers it, as its result or as a conflict.
func (w *Worker) judgeKept(t *task, k *kept, o runOpts) (v verdict, answered bool) {
	if k == nil {
		return verdict{}, false
	}
	if conflict(k.Fingerprint, t.fingerprint) && !(o.replay && k.failed()) {
		w.m.Claimed.WithLabelValues("conflict").Inc()
		return verdict{kind: verdictConflict, reply: conflictReply(t)}, true
	}
	if k.reply != nil && !(o.replay && k.failed()) {
		return verdict{kind: verdictKept, reply: k.reply}, true
	}
	return verdict{}, false
}

// maxBeginTries bounds how often a create judges its history again when
// other runs keep writing it: each of them held the lease in turn, which
// this run now holds, so more than one is already unusual.
const maxBeginTries = 3

// beginCreate writes the run record of a create that holds its lease c,
// after judging the run record an earlier attempt left (see step 3 above).
// The record is written over the history it was judged on, never over one
// written meanwhile (see [ledger.begin]); a job with no history read yet
// assumes none, and the write finds out if there was one. proceed is false
// when the job must not create now; v then says why (the caller releases
// the lease as the verdict needs). st is the job's failure state with this
// attempt's run record.
func (w *Worker) beginCreate(ctx context.Context, t *task, o runOpts, c claimed) (st failureState, v verdict, proceed bool) {
	l := w.durable.ledger
	key := t.identity.Key()
	var h history
	if o.hist != nil {
		h = *o.hist
	}
	run := &runRecord{Attempt: o.attempt, Worker: w.id, TimeoutMS: t.timeout.Milliseconds(), Fingerprint: t.fingerprint, Nonce: newJobID()}
	for range maxBeginTries {
		st = h.failureState
		if earlier := h.Running; earlier != nil {
			serverNow, err := l.leaseStored(ctx, key, c)
			if err != nil {
				return st, verdict{kind: verdictUnavailable, err: err}, false
			}
			v, proceed := w.reconcileEarlier(ctx, t, earlier, serverNow)
			if !proceed {
				v.st = st
				return st, v, false
			}
		}
		st.Running = run
		now, err := l.begin(ctx, key, st, h.revision, w.bookkeepingDeadline())
		switch {
		case err == nil:
			return st, verdict{}, true
		case !errors.Is(err, errHistoryChanged):
			return st, verdict{kind: verdictUnavailable, err: err}, false
		}
		h = now
	}
	return st, verdict{kind: verdictUnavailable, err: ledgerErr("keeping the job's run record",
		fmt.Errorf("%w %d times in a row", errHistoryChanged, maxBeginTries))}, false
}

// call runs the task's Salesforce work; a non-zero deadline bounds it (the
// attempt's lease).
func (w *Worker) call(ctx context.Context, t *task, deadline time.Time) (reply *sfblocks.Reply) {
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	defer func() {
		if r := recover(); r != nil {
			// The panic value may hold job data: only at debug.
			w.log.Error().Str("job_id", t.identity.ID).Str("block", string(t.block)).Msg("handler panicked")
			w.log.Debug().Str("job_id", t.identity.ID).Str("panic", fmt.Sprint(r)).Msg("handler panic value")
			reply = blocks.FailureReply(t.identity.ID, errPanic)
		}
	}()
	reply = t.run(ctx)
	if reply == nil {
		reply = blocks.FailureReply(t.identity.ID, errNilReply)
	}
	return reply
}

// reconcileEarlier decides what an earlier attempt (run, whose record the
// server stored at run.Started) left behind, now being serverNow by the
// server's clock. proceed is true when the job may create now.
func (w *Worker) reconcileEarlier(ctx context.Context, t *task, run *runRecord, serverNow time.Time) (v verdict, proceed bool) {
	if t.reconcile == nil {
		return verdict{}, true
	}
	// The earlier attempt's call ended by its deadline: the record was
	// written after the lease, and the call's deadline was counted from
	// before the lease, so both are on the server's time line.
	deadline := run.Started.Add(time.Duration(run.TimeoutMS) * time.Millisecond)
	landBy := deadline.Add(w.cfg.landingWindow)
	rec, err := w.reconcileCall(ctx, t, run.Started, landBy)
	switch {
	case err != nil && !retryable(err):
		return ambiguousErr(t, err), false
	case err != nil:
		return verdict{kind: verdictPending, delay: min(w.cfg.landingWindow/4+time.Second, 30*time.Second)}, false
	case rec.ObjectID != "":
		return verdict{kind: verdictDone, reply: adopted(t, rec.ObjectID)}, false
	case len(rec.Candidates) > 0:
		return ambiguous(t, rec.Candidates), false
	case serverNow.Before(landBy):
		return verdict{kind: verdictPending, delay: landBy.Sub(serverNow)}, false
	}
	w.log.Info().Str("job_id", t.identity.ID).Str("block", string(t.block)).Str("account", t.identity.Account).
		Int("earlier_attempt", run.Attempt).Msg("earlier attempt of the insert created nothing that can be found, and can no longer land; creating the record now")
	return verdict{}, true
}

// reconcileOwn decides an attempt of this run that failed in a way that
// may have saved the record.
func (w *Worker) reconcileOwn(ctx context.Context, t *task, failed *sfblocks.Reply, start time.Time) verdict {
	deadline := start.Add(t.timeout)
	rec, err := w.reconcileCall(ctx, t, start, deadline.Add(w.cfg.landingWindow))
	switch {
	case err != nil && !retryable(err):
		return ambiguousErr(t, err)
	case err != nil:
		// Salesforce cannot be asked now: the run record stays, and the
		// next run reconciles.
		return verdict{kind: verdictPending, reply: failed, delay: min(w.cfg.landingWindow/4+time.Second, 30*time.Second)}
	case rec.ObjectID != "":
		return verdict{kind: verdictDone, reply: adopted(t, rec.ObjectID)}
	case len(rec.Candidates) > 0:
		return ambiguous(t, rec.Candidates)
	}
	wait := time.Until(deadline.Add(w.cfg.landingWindow))
	return verdict{kind: verdictPending, reply: failed, delay: max(wait, time.Second)}
}

func (w *Worker) reconcileCall(ctx context.Context, t *task, from, to time.Time) (rec blocks.Reconciliation, err error) {
	defer func() {
		if r := recover(); r != nil {
			// A Planner of another make: the value may hold job data.
			w.log.Debug().Str("job_id", t.identity.ID).Str("panic", fmt.Sprint(r)).Msg("reconcile panic value")
			rec, err = blocks.Reconciliation{}, errPanic
		}
	}()
	// Bounded inside Reconcile; the context is the worker's, which only
	// ends in a hard shutdown.
	rec, err = t.reconcile(ctx, from, to)
	w.m.Reconciled.WithLabelValues(reconcileOutcome(rec, err)).Inc()
	ev := w.log.Info()
	if err != nil {
		ev = w.log.Warn().Str("error", err.Error())
	}
	ev.Str("job_id", t.identity.ID).Str("block", string(t.block)).Str("account", t.identity.Account).
		Str("object_id", rec.ObjectID).Int("candidates", len(rec.Candidates)).Int("conditions", rec.Conditions).
		Msg("reconciled an insert attempt whose outcome was unknown")
	return rec, err
}

func reconcileOutcome(r blocks.Reconciliation, err error) string {
	switch {
	case err != nil:
		return "error"
	case r.ObjectID != "":
		return "adopted"
	case len(r.Candidates) > 0:
		return "ambiguous"
	}
	return "none"
}

// adopted is the reply of a job whose record an earlier attempt created.
func adopted(t *task, objectID string) *sfblocks.Reply {
	created := true
	return &sfblocks.Reply{ID: t.identity.ID, Account: t.account, Status: sfblocks.StatusOK, ObjectID: objectID, Created: &created}
}

// ambiguous is the verdict of a create that several records may be.
func ambiguous(t *task, candidates []string) verdict {
	e := &sfblocks.Error{Code: sfblocks.CodeSalesforceError, SalesforceCode: "AMBIGUOUS_CREATE",
		Message: fmt.Sprintf("an earlier attempt of this insert may have created its record, and %d records match it (%s); "+
			"check them in Salesforce, then purge this dead letter if one is the job's, or replay it if none is",
			len(candidates), strings.Join(candidates, ", "))}
	return verdict{kind: verdictAmbiguous, reply: blocks.FailureReply(t.identity.ID, e), candidates: candidates}
}

// ambiguousErr is the verdict of a create whose earlier attempt may have
// saved, when reconciling cannot work at all (the token names no user, the
// object cannot be described): an operator must look.
func ambiguousErr(t *task, err error) verdict {
	e := &sfblocks.Error{Code: sfblocks.CodeSalesforceError, SalesforceCode: "AMBIGUOUS_CREATE", Err: err,
		Message: "an earlier attempt of this insert may have created its record, and sfblocks cannot look for it (" +
			blocks.AsError(err).Message + "); check Salesforce, then purge this dead letter if the record exists, or replay it if not"}
	return verdict{kind: verdictAmbiguous, reply: blocks.FailureReply(t.identity.ID, e)}
}

// retryable reports whether err, classified, is worth trying again.
func retryable(err error) bool { return blocks.AsError(err).Retryable }

// conflict reports whether two fingerprints name different jobs (an empty
// fingerprint, from an older record, matches anything).
func conflict(a, b string) bool { return a != "" && b != "" && a != b }

// conflictReply answers a job whose id another job already used.
func conflictReply(t *task) *sfblocks.Reply {
	return blocks.FailureReply(t.identity.ID, &sfblocks.Error{Code: sfblocks.CodeInvalidRequest,
		Message: fmt.Sprintf("job id %q was already used by another %s job of account %q with different content; "+
			"give each job its own id (a retry of the same job must send the same job)", t.identity.ID, t.block, t.identity.Account)})
}

func (k *kept) failed() bool { return k.reply != nil && k.reply.Status == sfblocks.StatusFailed }

// bookkeepingDeadline bounds a ledger write that must not be given up
// lightly (a result, a run record): long enough to ride out a reconnect
// and a cluster's leader change (the failover window).
func (w *Worker) bookkeepingDeadline() time.Duration {
	return max(3*w.durable.ledger.timeout, w.durable.ledger.window)
}

func newJobID() string { return nuid.Next() }
