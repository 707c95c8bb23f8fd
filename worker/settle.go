package worker

import (
	"errors"
	"time"

	"github.com/sfblocks/sfblocks/blocks"
)

// action is what happens to a durable job's message once its job ended.
type action string

const (
	// actionAck removes the job from the stream: it was answered.
	actionAck action = "ack"
	// actionNak hands the job back for another delivery (to any worker).
	actionNak action = "nak"
	// actionTerm stops delivering the job: it is answered with a failure.
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
	reply *blocks.Reply
}

// maxNakDelay bounds the wait before a handed-back job is redelivered.
const maxNakDelay = 30 * time.Second

// settle is the one place that decides what becomes of a durable job, from
// its reply (nil when it has none) or the worker-side error that left it
// without an outcome, its delivery attempt (1 for the first) and the
// consumer's MaxDeliver:
//
//   - a reply, success or failure, is final: keep it, send it, ack. (Retries
//     of retryable failures, with backoff and dead letters, belong here.)
//   - cut short by the drain timeout: nak at once, so another worker runs
//     it now (its outcome is unknown; inserts are safe with external_id).
//   - another worker-side error (results bucket unreadable): nak with a
//     delay growing with the attempt (2s per attempt, at most 30s), so a
//     brief outage does not burn deliveries.
//   - a worker-side error on the last delivery: answer a failure carrying
//     that error and term, so the caller is not left waiting.
func settle(reply *blocks.Reply, err error, attempt, maxDeliver int) settlement {
	switch {
	case err == nil && reply != nil:
		return settlement{action: actionAck, reply: reply}
	case err == nil:
		err = errNilReply
	}
	if attempt >= maxDeliver {
		if errors.Is(err, errHandedBack) {
			err = errCutShort
		}
		return settlement{action: actionTerm, reply: blocks.FailureReply("", err)}
	}
	if errors.Is(err, errHandedBack) {
		return settlement{action: actionNak}
	}
	delay := time.Duration(attempt) * 2 * time.Second
	if delay > maxNakDelay {
		delay = maxNakDelay
	}
	return settlement{action: actionNak, delay: delay}
}
