package worker

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks"
	"github.com/sfblocks/sfblocks/worker/internal/natstrace"
)

// storedIDTime is how a job without an id of its own shows the time its
// stream stored it, in the id it is given ("SFBLOCKS_JOBS-17-20261202T031501.123456789Z").
const storedIDTime = "20060102T150405.000000000Z"

// durableJob is one durable message on its way to being settled.
type durableJob struct {
	block    sfblocks.Block
	msg      jetstream.Msg
	task     *task
	key      string // task.identity.Key()
	replyTo  string
	attempt  int // this run's attempt: failed attempts before it + 1
	delivery int // JetStream's delivery count
	replay   bool
	replays  int
	replayOf uint64
	received time.Time
	// apart, when set, files the job's dead letter apart from its
	// identity's and keeps nothing of it: the job reuses another job's id
	// ("conflict") or named a reply subject the worker refuses
	// ("refused"), and must not replace or answer for the real job.
	apart string
	// span is the delivery's job span (see tracing.go).
	span trace.Span
}

// dlqIdentity is what the job's dead letter is filed under: its identity,
// except for a job set apart (see durableJob.apart), whose dead letter must
// not replace the real job's.
func (j *durableJob) dlqIdentity() sfblocks.JobIdentity {
	id := j.task.identity
	if j.apart != "" {
		id.ID += "~" + j.apart
	}
	return id
}

// id is the job's id, as its reply and logs give it.
func (j *durableJob) id() string { return j.task.identity.ID }

// run executes one durable job of a block's main consumer on its own
// goroutine, holding one slot.
func (d *durable) run(b sfblocks.Block, msg jetstream.Msg) { d.runFrom(b, msg, false) }

// runFrom executes one durable job; parked tells a job of an account's
// parked consumer from one of a block's main consumer.
func (d *durable) runFrom(b sfblocks.Block, msg jetstream.Msg, parked bool) {
	w := d.w
	ctx, span := d.startDurable(b, msg)
	defer span.End()
	msg = traced(msg, span)
	defer func() {
		d.running.Add(-1)
		w.m.InFlight.Dec()
		w.stats[b].inFlight.Add(-1)
		<-w.sem
		w.wg.Done()
	}()
	stop := d.keepAlive(b, msg)
	defer stop()

	j := &durableJob{block: b, msg: msg, received: time.Now(), attempt: 1, delivery: 1, span: span}
	var seq uint64
	var stored time.Time
	if meta, err := msg.Metadata(); err == nil {
		j.delivery, seq, stored = int(meta.NumDelivered), meta.Sequence.Stream, meta.Timestamp
	}
	if j.delivery > 1 {
		w.m.DurableRedelivered.WithLabelValues(string(b)).Inc()
	}
	h := msg.Headers()
	// A job without an id of its own is keyed by the replay's header, else
	// by where the stream stored it: its sequence and the time the server
	// stored it, the same on every delivery. The time tells a stream
	// deleted and created again (numbered from 1 again) from the first,
	// whose kept results would otherwise answer the new stream's jobs.
	hint := h.Get(sfblocks.HeaderJobID)
	if hint == "" || !validText(hint) {
		hint = fmt.Sprintf("%s-%d-%s", d.cfg.Stream, seq, stored.UTC().Format(storedIDTime))
	}
	j.task = w.plan(sfblocks.PathDurable, b, msg.Data(), hint)
	traceTask(span, j.task)
	j.key = j.task.identity.Key()
	j.replyTo = h.Get(sfblocks.HeaderReplyTo)
	j.replays, j.replayOf = replays(h)
	j.replay = j.replayOf != 0
	if j.replyTo != "" {
		if why := w.replies.check(j.replyTo); why != "" {
			d.refuse(j, why)
			return
		}
	}
	if j.task.invalid == nil {
		// An account that cannot run now keeps its jobs to itself.
		acct := j.task.account
		if !parked && !d.avail.blockedUntil(acct, time.Now()).IsZero() && d.park(j, "breaker_open") {
			return
		}
		if w.cfg.budget.defers(acct) {
			// The account's API usage is in the reserve kept for
			// synchronous jobs: this one waits, using no attempt.
			if parked || !d.park(j, "budget") {
				d.settleMsg(b, msg, settlement{action: actionNak, delay: time.Second}, "")
			}
			return
		}
		if !w.shares.acquire(acct) {
			if parked || !d.park(j, "saturated") {
				d.settleMsg(b, msg, settlement{action: actionNak, delay: 100 * time.Millisecond}, "")
			}
			return
		}
		defer w.shares.release(acct)
	}

	// A job that writes, or one delivered before, may have a history; a
	// first delivery of a search has none and costs no read.
	var hist *history
	if j.task.invalid == nil && (j.delivery > 1 || j.task.writes || j.replay) {
		hh, err := d.ledger.history(w.base, j.key)
		if err != nil {
			d.unavailable(j, err)
			return
		}
		hist = &hh
		if hh.Final != nil {
			// The run before failed for good but could not be dead-lettered:
			// only dead-letter it now.
			if r := decodeKept(hh.Final); r != nil {
				d.deadLetter(j, settlement{action: actionTerm, reply: r, deadLetter: hh.Reason}, r, hh.Final, hh.failureState, false, nil)
				return
			}
		}
		j.attempt = hh.Attempts + 1
	}

	v := w.runTask(ctx, j.task, runOpts{path: sfblocks.PathDurable, attempt: j.attempt, replay: j.replay, hist: hist,
		fresh: j.delivery == 1 && !j.replay})
	switch v.kind {
	case verdictUnavailable:
		d.unavailable(j, v.err)
		return
	case verdictBusy:
		w.log.Debug().Str("job_id", j.id()).Str("block", string(b)).Dur("retry_in", v.delay).
			Msg("durable job is being run by another worker; waiting for it")
		d.settleMsg(b, msg, settlement{action: actionNak, delay: v.delay}, "")
		return
	case verdictPending:
		if v.reply != nil {
			// This run's own attempt failed and may yet land: it counts.
			if j.attempt >= d.cfg.MaxAttempts {
				reply, data := w.encode(d.finalReply(j, v.reply))
				d.deadLetter(j, settlement{action: actionTerm, reply: reply, deadLetter: sfblocks.ReasonAmbiguousCreate}, reply, data, v.st, true, nil)
				return
			}
			st := v.st.failed(v.reply, j.attempt, time.Now())
			if err := d.ledger.record(w.base, j.key, st, w.bookkeepingDeadline()); err != nil {
				w.log.Warn().Err(err).Str("job_id", j.id()).Msg("could not keep the failed attempt; it is not counted")
			}
			if v.reply.Error != nil {
				w.m.DurableRetried.WithLabelValues(string(b), string(v.reply.Error.Code)).Inc()
			}
		}
		w.log.Info().Str("job_id", j.id()).Str("block", string(b)).Str("account", j.task.identity.Account).
			Int("attempt", j.attempt).Dur("retry_in", v.delay).
			Msg("an attempt of this insert may still create its record in Salesforce; waiting before deciding")
		d.settleMsg(b, msg, settlement{action: actionNak, delay: min(v.delay, maxNakDelay)}, "")
		return
	case verdictKept:
		w.m.DurableReplayed.WithLabelValues(string(b)).Inc()
		w.log.Info().Str("job_id", j.id()).Str("block", string(b)).Str("path", sfblocks.PathDurable).
			Int("attempt", j.attempt).Str("status", string(v.reply.Status)).Msg("durable job already finished: answering with its kept result")
		reply, data := w.encode(v.reply)
		d.answer(j, reply, data, true)
		d.settleMsg(b, msg, settlement{action: actionAck}, "")
		return
	}

	if v.kind == verdictDone && blocks.LimitOf(v.reply) == blocks.LimitConcurrent {
		// The org is running its limit of long requests: the account's
		// other durable jobs stand aside for a few seconds, this one is
		// retried like any retryable failure.
		d.avail.block(j.task.account, time.Now().Add(concurrencyBackoff))
	}
	if wait, open := notSentFor(v.reply); open && v.kind == verdictDone {
		// The account's breaker is open: nothing was sent. Its other jobs
		// wait aside from now on, and so does this one.
		d.avail.block(j.task.account, time.Now().Add(wait))
		if !parked && d.park(j, "breaker_open") {
			return
		}
	}
	reply, data := w.encode(d.finalReply(j, v.reply))
	switch v.kind {
	case verdictAmbiguous:
		d.deadLetter(j, settlement{action: actionTerm, reply: reply, deadLetter: sfblocks.ReasonAmbiguousCreate}, reply, data, v.st, true, v.candidates)
		return
	case verdictConflict:
		d.conflicted(j, reply, data, v.st)
		return
	}
	// A plain handler's create that may have saved is not reconciled
	// here: settle dead-letters it as ambiguous.
	s := settle(outcome{reply: reply, attempt: j.attempt, delivery: j.delivery,
		maybeSaved: blocks.MayHaveSaved(reply) && j.task.reconcile == nil}, d.policy)
	if s.reply != nil && s.reply != reply {
		// The decision answers a job that will not run again.
		s.reply.ID, s.reply.Attempt = j.id(), j.attempt
		reply, data = w.encode(s.reply)
	}
	switch {
	case s.deadLetter != "":
		d.deadLetter(j, s, reply, data, v.st, true, nil)
	case s.retry:
		d.retry(j, s, reply, v.st)
	default:
		if s.reply != nil {
			switch d.keep(j, reply, data) {
			case keptByOther:
				w.m.Claimed.WithLabelValues("conflict").Inc()
				reply, data := w.encode(d.finalReply(j, conflictReply(j.task)))
				d.conflicted(j, reply, data, v.st)
				return
			case keptOK:
				if v.st.Attempts > 0 {
					d.clearAttempts(j)
				}
			}
		}
		d.settleMsg(b, msg, s, "")
	}
}

// conflicted dead-letters a job whose id another job (with other content)
// already used, answering it with reply (its INVALID_REQUEST): so nothing
// is lost, but it is filed apart and never kept, since the results entry
// and the dead letter of its identity are the other job's.
func (d *durable) conflicted(j *durableJob, reply *sfblocks.Reply, data []byte, st failureState) {
	j.apart = "conflict-" + j.task.fingerprint
	d.deadLetter(j, settlement{action: actionTerm, reply: reply, deadLetter: sfblocks.ReasonPermanent}, reply, data, st, false, nil)
}

// finalReply is the reply of a job answered for good.
func (d *durable) finalReply(j *durableJob, r *sfblocks.Reply) *sfblocks.Reply {
	if r.ID == "" {
		r.ID = j.id()
	}
	r.Attempt = j.attempt
	if r.DurationMS == 0 {
		r.DurationMS = time.Since(j.received).Milliseconds()
	}
	return r
}

// refuse dead-letters a job whose Reply-To the worker will not publish to:
// it is not run, and nothing is sent to that subject.
func (d *durable) refuse(j *durableJob, why string) {
	w := d.w
	msg := refusedReply(j.replyTo, why)
	w.m.ReplyRefused.WithLabelValues(sfblocks.PathDurable).Inc()
	w.log.Warn().Str("job_id", j.id()).Str("block", string(j.block)).Str("path", sfblocks.PathDurable).Msg(msg)
	j.replyTo, j.apart = "", "refused"
	reply, data := w.encode(d.finalReply(j, blocks.FailureReply(j.id(), &sfblocks.Error{Code: sfblocks.CodeInvalidRequest, Message: msg})))
	d.deadLetter(j, settlement{action: actionTerm, reply: reply, deadLetter: sfblocks.ReasonReplyRefused}, reply, data, failureState{}, false, nil)
}

// unavailable hands a job back when the ledger cannot be read or written:
// this worker cannot tell what the job's earlier runs did, so it runs
// nothing. No attempt is used.
func (d *durable) unavailable(j *durableJob, err error) {
	d.w.log.Warn().Err(err).Str("job_id", j.id()).Str("block", string(j.block)).
		Msg("cannot read or write the job ledger; handing the durable job back")
	d.settleMsg(j.block, j.msg, settlement{action: actionNak, delay: min(time.Duration(j.delivery)*2*time.Second, maxNakDelay)}, "")
}

// keepOutcome is what [durable.keep] made of a job's result.
type keepOutcome int

const (
	// keptNot: answered, but nothing kept (a job set apart, or the write
	// failed).
	keptNot keepOutcome = iota
	// keptOK: kept (or another run's success kept first), then answered.
	keptOK
	// keptByOther: the results entry is another job's, which used the same
	// id with other content: nothing kept, nothing answered; the caller
	// answers the conflict.
	keptByOther
)

// keep stores the job's result, then answers it: kept before sent, so a job
// delivered again after this point never calls Salesforce again. When
// another run kept a success first, that one is the job's answer.
func (d *durable) keep(j *durableJob, reply *sfblocks.Reply, data []byte) keepOutcome {
	w := d.w
	if j.apart != "" {
		w.record(j.block, sfblocks.PathDurable, reply, time.Since(j.received))
		d.answer(j, reply, data, false)
		return keptNot
	}
	prior, err := d.ledger.keep(w.base, j.key, j.task.fingerprint, data, reply.Status != sfblocks.StatusFailed, j.replay, w.bookkeepingDeadline())
	switch {
	case errors.Is(err, errIDReused):
		return keptByOther
	case err != nil:
		// Still answered and acked: the caller gets the result, and a
		// redelivery (a lost ack) finds the run record and reconciles.
		w.log.Error().Err(err).Str("job_id", j.id()).Str("block", string(j.block)).
			Msg("could not keep the durable job's result; a redelivery would reconcile or run it again")
	}
	if prior != nil && prior.reply != nil {
		reply, data = w.encode(prior.reply)
	}
	w.record(j.block, sfblocks.PathDurable, reply, time.Since(j.received))
	d.answer(j, reply, data, false)
	if err != nil {
		return keptNot
	}
	return keptOK
}

// retry keeps the failed attempt in the job's failure state and hands the
// job back for a delayed redelivery; the caller gets no reply yet.
func (d *durable) retry(j *durableJob, s settlement, reply *sfblocks.Reply, st failureState) {
	w := d.w
	natstrace.RecordReply(j.span, reply)
	st = st.failed(reply, j.attempt, time.Now())
	if err := d.ledger.record(w.base, j.key, st, w.bookkeepingDeadline()); err != nil {
		// Not counted: the job is still retried, and the next failure that
		// can be kept counts again.
		w.log.Warn().Err(err).Str("job_id", j.id()).Str("block", string(j.block)).Msg("could not keep the failed attempt; it is not counted")
	}
	w.m.DurableRetried.WithLabelValues(string(j.block), string(reply.Error.Code)).Inc()
	w.log.Info().Str("job_id", j.id()).Str("block", string(j.block)).Str("path", sfblocks.PathDurable).Str("account", reply.Account).
		Str("code", string(reply.Error.Code)).Int("attempt", j.attempt).Int("max_attempts", d.cfg.MaxAttempts).
		Dur("retry_in", s.delay).Msg("job failed; retrying")
	d.settleMsg(j.block, j.msg, s, "")
}

// deadLetter publishes the job's final failure to the dead-letter stream,
// then keeps and sends the failure reply and terminates the message. When
// the dead letter cannot be stored, the job is handed back (nak) with its
// final reply kept in its failure state, so the next delivery only tries
// the dead letter again: a job is never acked without its dead letter.
func (d *durable) deadLetter(j *durableJob, s settlement, reply *sfblocks.Reply, data []byte, st failureState, ran bool, candidates []string) {
	w := d.w
	now := time.Now()
	if ran {
		st = st.failed(reply, j.attempt, now)
	}
	dl := newDeadLetter(j.block, sfblocks.PathDurable, s.deadLetter, j.task.identity, j.msg.Subject(), j.msg.Data(), j.msg.Headers(), reply, st)
	dl.Replays, dl.ReplayOf, dl.Candidates = j.replays, j.replayOf, candidates
	dl.TraceParent = natstrace.TraceParent(j.task.trace)
	traceNote(j.span, attribute.String(natstrace.AttrDeadLetter, s.deadLetter))
	if err := d.publishDeadLetter(w.base, j.dlqIdentity(), dl); err != nil {
		w.log.Error().Err(err).Str("job_id", j.id()).Str("block", string(j.block)).
			Msg("could not dead-letter a failed job; handing it back to try again later")
		st.Final, st.Reason = data, s.deadLetter
		if err := d.ledger.record(w.base, j.key, st, w.bookkeepingDeadline()); err != nil {
			w.log.Warn().Err(err).Str("job_id", j.id()).Msg("could not keep the pending dead letter; the job will run again")
		}
		d.settleMsg(j.block, j.msg, settlement{action: actionNak, delay: min(time.Duration(j.delivery)*2*time.Second, maxNakDelay)}, "")
		return
	}
	switch d.keep(j, reply, data) {
	case keptByOther:
		// Its dead letter is stored already; its answer must not be the
		// other job's result.
		cr, cdata := w.encode(d.finalReply(j, conflictReply(j.task)))
		w.record(j.block, sfblocks.PathDurable, cr, time.Since(j.received))
		d.answer(j, cr, cdata, false)
	case keptOK:
		if j.delivery > 1 || st.Attempts > 1 || st.Final != nil {
			d.clearAttempts(j)
		}
	}
	d.settleMsg(j.block, j.msg, settlement{action: actionTerm}, "")
}

func (d *durable) clearAttempts(j *durableJob) {
	if err := d.ledger.forget(d.w.base, j.key); err != nil {
		d.w.log.Warn().Err(err).Str("job_id", j.id()).Msg("could not clear the job's attempts; a replay may count them")
	}
}

// failed returns st with one more failed attempt, reply's failure.
func (st failureState) failed(reply *sfblocks.Reply, attempt int, now time.Time) failureState {
	now = now.UTC()
	st.Attempts = max(st.Attempts, attempt)
	if st.FirstFailure.IsZero() {
		st.FirstFailure = now
	}
	st.LastFailure = now
	if reply != nil && reply.Error != nil {
		st.LastCode, st.LastMessage = reply.Error.Code, reply.Error.Message
	}
	return st
}

// answer publishes the reply to the job's Reply-To subject, if it has one.
func (d *durable) answer(j *durableJob, reply *sfblocks.Reply, data []byte, replayed bool) {
	w := d.w
	natstrace.RecordReply(j.span, reply)
	if j.replyTo == "" {
		if !replayed {
			w.log.Info().Str("job_id", j.id()).Str("block", string(j.block)).Str("result_key", j.key).
				Msg("durable job had no Reply-To header; its result is kept in the results bucket only")
		}
		return
	}
	if err := w.nc.PublishMsg(replyMsg(j.replyTo, reply, data)); err != nil {
		w.log.Error().Err(err).Str("job_id", j.id()).Str("block", string(j.block)).
			Msg("publishing the durable job's reply; its result is kept in the results bucket")
	}
}

// settleMsg acks, naks or terminates msg as s says. An ack waits for the
// consumer's answer and is retried across a leader change (see
// failover.go): acking twice is harmless, and one lost would make the job
// come back after AckWait (answered from its kept result, but answered
// twice). A lost nak or term only makes JetStream deliver the job again
// after AckWait, which settles it alike: they are not waited for.
func (d *durable) settleMsg(b sfblocks.Block, msg jetstream.Msg, s settlement, reason string) {
	var err error
	switch s.action {
	case actionAck:
		err = retryJS(d.w.base, d.cfg.FailoverWindow, d.ackTimeout(), "acking the job", d.cfg.Stream, msg.DoubleAck)
	case actionNak:
		if s.delay > 0 {
			err = msg.NakWithDelay(s.delay)
		} else {
			err = msg.Nak()
		}
	case actionTerm:
		err = msg.TermWithReason("sfblocks: failed for good; dead-lettered")
	}
	d.w.m.DurableSettled.WithLabelValues(string(b), string(s.action)).Inc()
	if err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		d.w.log.Warn().Err(err).Str("block", string(b)).Str("action", string(s.action)).
			Msg("settling a durable job failed; JetStream will deliver it again after the ack wait")
	}
	if reason != "" {
		d.w.log.Debug().Str("block", string(b)).Str("action", string(s.action)).Msg(reason)
	}
}
