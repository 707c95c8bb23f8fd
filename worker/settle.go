package worker

import (
	"errors"
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
	// reply is the job's reply, nil when it has none.
	reply *sfblocks.Reply
	// err is the worker-side error that left the job without an outcome
	// (results bucket unreadable, cut short by the drain timeout).
	err error
	// kept: reply is the job's kept result (it finished before).
	kept bool
	// attempt is this run's attempt number: failed attempts before + 1.
	attempt int
	// delivery is JetStream's delivery count (1 for the first).
	delivery int
	// maybeSaved: the job is an Insert without external_id whose failure
	// may nevertheless have created its record ([blocks.MayHaveSaved]).
	maybeSaved bool
}

// maxNakDelay bounds the wait before a handed-back job without a counted
// attempt is redelivered.
const maxNakDelay = 30 * time.Second

// minNakDelay is the least wait before a job refused by an open breaker is
// delivered again.
const minNakDelay = 100 * time.Millisecond

// settle is the one place that decides what becomes of a durable job:
//
//   - a success (ok, no_data), or a kept result: keep it, send it, ack;
//   - a permanent failure (error.retryable false): dead-letter it, send the
//     failure, term;
//   - a retryable failure refused by an open circuit breaker (nothing was
//     sent): nak with a delay until the breaker lets calls through (plus
//     jitter, at least 100ms, at most 30s); no attempt is used;
//   - a retryable failure of an Insert without external_id that may have
//     created the record (TIMEOUT, dropped connection: see
//     mayHaveCommitted): dead-letter it (ReasonAmbiguousCreate) rather than
//     risk a second record;
//   - another retryable failure: nak with exponential backoff and jitter,
//     counting the attempt, until the MaxAttempts-th fails: dead-letter it
//     (ReasonAttemptsExhausted);
//   - cut short by the drain timeout: nak at once, so another worker runs
//     it now (an upsert or a search is safe to run again), except an
//     Insert without external_id that may have saved its record, which is
//     dead-lettered as ambiguous;
//   - another worker-side error (results bucket unreadable): nak with a
//     delay growing with the delivery (2s per delivery, at most 30s); no
//     attempt is used;
//   - any nak on the consumer's last delivery (MaxDeliver, when set):
//     dead-letter (ReasonMaxDeliveries) so the job does not linger unseen.
func settle(o outcome, p retryPolicy) settlement {
	lastDelivery := p.maxDeliver > 0 && o.delivery >= p.maxDeliver
	if o.err == nil && o.reply == nil {
		o.err = errNilReply
	}
	if o.err != nil {
		err := o.err
		if errors.Is(err, errHandedBack) {
			err = errCutShort
		}
		switch {
		case errors.Is(o.err, errHandedBack) && o.maybeSaved:
			return settlement{action: actionTerm, reply: blocks.FailureReply("", err), deadLetter: sfblocks.ReasonAmbiguousCreate}
		case lastDelivery:
			return settlement{action: actionTerm, reply: blocks.FailureReply("", err), deadLetter: sfblocks.ReasonMaxDeliveries}
		case errors.Is(o.err, errHandedBack):
			return settlement{action: actionNak}
		}
		return settlement{action: actionNak, delay: min(time.Duration(o.delivery)*2*time.Second, maxNakDelay)}
	}
	r := o.reply
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
