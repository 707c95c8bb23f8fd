package worker

import (
	"time"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks"
)

// action is what happens to a durable job's message once its job ended.
type action string

const (
	// actionAck removes the job from the stream: it was answered.
	actionAck action = "ack"
	// actionNak hands the job back for another delivery (to any worker).
	actionNak action = "nak"
	// actionTerm stops delivering the job: it failed for good, was
	// dead-lettered and answered with its failure.
	actionTerm action = "term"
)

// settlement is the decision for one durable message.
type settlement struct {
	action action
	// delay before the redelivery of a nak; 0 redelivers at once.
	delay time.Duration
	// reply to keep and send before settling; nil sends nothing. It is
	// the job's own reply, or a failure built here for a job that will not
	// be delivered again.
	reply *sfblocks.Reply
	// retry: this run was a failed attempt; keep it in the job's failure
	// state before the nak, so the attempts are counted across deliveries.
	retry bool
	// deadLetter is the Reason* the job is dead-lettered for, "" when it is
	// not: the dead letter is stored before the reply is sent and the
	// message terminated.
	deadLetter string
}

// outcome is what settle knows about one delivery of a durable job.
type outcome struct {
	// reply is the job's reply.
	reply *sfblocks.Reply
	// kept: reply is the job's kept result (it finished before).
	kept bool
	// attempt is this run's attempt number: failed attempts before + 1.
	attempt int
	// delivery is JetStream's delivery count (1 for the first).
	delivery int
	// maybeSaved: the job is an Insert without external_id whose failure
	// may nevertheless have created its record, and nothing reconciled it
	// ([blocks.MayHaveSaved]).
	maybeSaved bool
}

// maxNakDelay bounds the wait before a handed-back job without a counted
// attempt is redelivered.
const maxNakDelay = 30 * time.Second

// minNakDelay is the least wait before a job refused by an open breaker is
// delivered again.
const minNakDelay = 100 * time.Millisecond

// settle is the one place that decides what becomes of a durable job
// that ran (runTask has already answered the cases where nothing ran: a
// kept result, a job another worker holds, an unavailable ledger, an
// earlier attempt still settling):
//
//   - a success (ok, no_data), or a kept result: keep it, send it, ack;
//   - a permanent failure (error.retryable false): dead-letter it, send the
//     failure, term;
//   - a retryable failure refused by an open circuit breaker (nothing was
//     sent): nak with a delay until the breaker lets calls through (plus
//     jitter, at least 100ms, at most 30s); no attempt is used;
//   - a retryable failure that may have created a record nothing
//     reconciled (maybeSaved): dead-letter it (ambiguous_create) rather
//     than risk a second record;
//   - another retryable failure: nak with exponential backoff and jitter,
//     counting the attempt, until the MaxAttempts-th fails: dead-letter it
//     (attempts_exhausted);
//   - any nak on the consumer's last delivery (MaxDeliver, when set):
//     dead-letter (max_deliveries) so the job does not linger unseen.
func settle(o outcome, p retryPolicy) settlement {
	lastDelivery := p.maxDeliver > 0 && o.delivery >= p.maxDeliver
	r := o.reply
	if r == nil {
		r = blocks.FailureReply("", errNilReply)
	}
	if o.kept || r.Status != sfblocks.StatusFailed || r.Error == nil {
		return settlement{action: actionAck, reply: r}
	}
	if !r.Error.Retryable {
		return settlement{action: actionTerm, reply: r, deadLetter: sfblocks.ReasonPermanent}
	}
	if wait, open := notSentFor(r); open && !lastDelivery {
		wait += p.rand(wait/4 + minNakDelay)
		return settlement{action: actionNak, delay: min(max(wait, minNakDelay), maxNakDelay)}
	}
	switch {
	case o.maybeSaved:
		return settlement{action: actionTerm, reply: r, deadLetter: sfblocks.ReasonAmbiguousCreate}
	case o.attempt >= p.maxAttempts:
		return settlement{action: actionTerm, reply: r, deadLetter: sfblocks.ReasonAttemptsExhausted}
	case lastDelivery:
		return settlement{action: actionTerm, reply: r, deadLetter: sfblocks.ReasonMaxDeliveries}
	}
	return settlement{action: actionNak, delay: p.backoffFor(o.attempt + 1), retry: true}
}
