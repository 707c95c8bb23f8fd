package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks"
	"github.com/sfblocks/sfblocks/worker/internal/natstrace"
)

// Failures the synchronous path answers on its own.
var (
	// errExpired answers a job whose deadline passed while it waited for a
	// slot: its caller has given up, or is about to.
	errExpired = &sfblocks.Error{Code: sfblocks.CodeTimeout, Retryable: true,
		Message: "the job waited for a free slot longer than its deadline and was not started; retry it, or add workers"}
	// errDisconnected answers a job taken from the backlog while the
	// worker is cut off from NATS: it cannot claim the job, keep its result
	// or be sure its answer arrives.
	errDisconnected = &sfblocks.Error{Code: sfblocks.CodeSalesforceUnavailable, Retryable: true,
		Message: "the worker lost its NATS connection and did not start the job; retry it"}
	// errLedgerDown answers a job the worker could not claim or look up.
	errLedgerDown = &sfblocks.Error{Code: sfblocks.CodeSalesforceUnavailable, Retryable: true,
		Message: "the worker could not reach the fleet's job ledger (JetStream) and did not start the job; retry it"}
)

// run executes one synchronous job on a pool goroutine, holding one slot
// (see pool.go), and answers it.
func (w *Worker) run(j *job) {
	ctx, span := w.startSync(j)
	defer span.End()
	defer func() {
		w.stats[j.block].inFlight.Add(-1)
		w.m.InFlight.Dec()
		w.mu.Lock()
		delete(w.inflight, j)
		w.mu.Unlock()
		<-w.sem
		w.wg.Done()
	}()
	t := w.plan(sfblocks.PathSync, j.block, j.req.Data(), "")
	traceTask(span, t)
	var v verdict
	switch {
	case t.invalid != nil:
		v = verdict{kind: verdictDone, reply: t.invalid}
	case time.Since(j.received) > t.timeout:
		w.m.Expired.Inc()
		v = verdict{kind: verdictNotStarted, reply: blocks.FailureReply(t.identity.ID, errExpired)}
	case !w.nc.IsConnected():
		v = verdict{kind: verdictNotStarted, reply: blocks.FailureReply(t.identity.ID, errDisconnected)}
	case !w.shares.acquire(t.account):
		w.m.Saturated.Inc()
		v = verdict{kind: verdictNotStarted, reply: blocks.FailureReply(t.identity.ID, saturated(t.account, w.shares.share))}
	case !w.tracked(t, sfblocks.PathSync):
		// As runTask would, one frame less on the call's stack.
		v = verdict{kind: verdictDone, reply: w.call(ctx, t, time.Time{})}
		w.shares.release(t.account)
	default:
		v = w.runTask(ctx, t, runOpts{path: sfblocks.PathSync, attempt: 1})
		w.shares.release(t.account)
	}
	reply, reason, keep := w.syncReply(j, t, v)
	if reply.Attempt == 0 {
		reply.Attempt = 1 // the synchronous path has no redelivery
	}
	var kept sfblocks.Reply
	if keep {
		kept = *reply // as it was before the answer gave it its duration
	}
	w.answer(j, reply)
	natstrace.RecordReply(span, reply)
	if keep {
		// After the answer: the caller does not wait for the bookkeeping.
		// A retry sent meanwhile finds the lease still held and waits for
		// this result; one sent after a failed keep reconciles the run
		// record and adopts the record, so it is answered alike.
		w.keepSync(t, &kept, reply)
	}
	if w.durable != nil && reply.Status == sfblocks.StatusFailed && reason != "" {
		// After the answer: the caller does not wait for the dead letter.
		w.durable.syncDeadLetterAs(t, reason, v.candidates, j.req.Subject(), j.req.Data(), nats.Header(j.req.Headers()), reply)
	}
}

// syncReply turns a verdict into the synchronous job's reply. reason is
// the dead-letter reason of a failure that must not vanish ("" for none);
// keep says the reply is to be kept for a retry with the same id (see
// keepSync), which the caller does once it has answered.
func (w *Worker) syncReply(j *job, t *task, v verdict) (reply *sfblocks.Reply, reason string, keep bool) {
	switch v.kind {
	case verdictUnavailable:
		w.log.Warn().Err(v.err).Str("job_id", t.identity.ID).Str("block", string(t.block)).Msg("cannot read or write the job ledger; the synchronous job was not started")
		return blocks.FailureReply(t.identity.ID, errLedgerDown), "", false
	case verdictKept, verdictConflict, verdictNotStarted:
		// Nothing ran: the caller retries, and nothing is dead-lettered.
		return v.reply, "", false
	case verdictBusy:
		return w.join(j, t), "", false
	case verdictPending:
		return blocks.FailureReply(t.identity.ID, &sfblocks.Error{Code: sfblocks.CodeTimeout, Retryable: true,
				Message: fmt.Sprintf("an attempt of this insert may have created its record and Salesforce cannot tell yet; "+
					"retry with the same id after %v, and sfblocks will find the record or create it once", v.delay.Round(time.Second))}),
			sfblocks.ReasonSyncFailure, false
	case verdictAmbiguous:
		return v.reply, sfblocks.ReasonAmbiguousCreate, w.keeps(t, v.reply)
	}
	reply = v.reply
	if reply.Status == sfblocks.StatusFailed {
		reason = sfblocks.ReasonSyncFailure
	}
	return reply, reason, w.keeps(t, reply)
}

// keeps reports whether a synchronous job's outcome is kept: a tracked
// job's success or a failure that retrying cannot fix. A retryable failure
// is not kept, so a retry runs (after reconciling, when the attempt may
// have saved).
func (w *Worker) keeps(t *task, reply *sfblocks.Reply) bool {
	return w.tracked(t, sfblocks.PathSync) && (reply.Error == nil || !reply.Error.Retryable)
}

// keepSync keeps a tracked synchronous job's final outcome, so that the
// caller's retry with the same id gets it without running again. answered
// is the reply the caller got. When another run kept a success first (it
// adopted this run's record, or ran the job while this one was cut off
// from NATS), that one stays.
func (w *Worker) keepSync(t *task, reply, answered *sfblocks.Reply) {
	if reply.ID == "" {
		reply.ID = t.identity.ID
	}
	reply.Attempt = 1
	r, data := w.encode(reply)
	prior, err := w.durable.ledger.keep(w.base, t.identity.Key(), t.fingerprint, data, r.Status != sfblocks.StatusFailed, false, w.bookkeepingDeadline())
	switch {
	case errors.Is(err, errIDReused):
		// Another job took the id between this one's lookup and now; its
		// result stays its own.
		w.log.Warn().Str("job_id", t.identity.ID).Str("block", string(t.block)).Str("account", t.identity.Account).
			Msg("the synchronous insert's id was used meanwhile by another job with other content; this result is not kept, so give each job its own id")
	case err != nil:
		w.log.Error().Err(err).Str("job_id", t.identity.ID).Str("block", string(t.block)).
			Msg("could not keep the synchronous insert's result; a retry with the same id reconciles instead")
	case prior != nil && prior.reply != nil && prior.reply.ObjectID != answered.ObjectID:
		w.log.Warn().Str("job_id", t.identity.ID).Str("block", string(t.block)).Str("account", t.identity.Account).
			Str("object_id", answered.ObjectID).Str("kept_object_id", prior.reply.ObjectID).
			Msg("another run of this synchronous insert kept a different result first; a retry with the same id gets that one")
	}
}

// join waits for the result of a job another run holds, until the job's
// own deadline from its receipt: a caller that timed out and retried while
// its first request still runs gets that request's answer.
func (w *Worker) join(j *job, t *task) *sfblocks.Reply {
	ctx, cancel := context.WithDeadline(w.base, j.received.Add(t.timeout))
	defer cancel()
	w.m.Claimed.WithLabelValues("busy").Inc()
	k, err := w.durable.ledger.await(ctx, t.identity.Key())
	switch {
	case err == nil && k.reply != nil && !conflict(k.Fingerprint, t.fingerprint):
		return k.reply
	case err == nil && k.reply != nil:
		return conflictReply(t)
	}
	return blocks.FailureReply(t.identity.ID, &sfblocks.Error{Code: sfblocks.CodeTimeout, Retryable: true,
		Message: "the same job is still running on another worker and did not finish before this request's deadline; retry with the same id to get its result"})
}
