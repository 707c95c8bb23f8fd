package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/worker/internal/natstrace"
)

// DLQSubject returns the subject of a job's dead letter on this worker's
// prefix; see [sfblocks.DLQSubject].
func (w *Worker) DLQSubject(job sfblocks.JobIdentity) string {
	return sfblocks.DLQSubject(w.cfg.prefix, job)
}

// newDeadLetter builds the envelope of a job whose final failure is reply.
func newDeadLetter(block sfblocks.Block, path, reason string, job sfblocks.JobIdentity, subject string, payload []byte, h nats.Header, reply *sfblocks.Reply, st failureState) *sfblocks.DeadLetter {
	dl := &sfblocks.DeadLetter{
		JobID: job.ID, Block: block, Account: reply.Account, Path: path, Reason: reason, Subject: subject,
		ResultCode: reply.ResultCode, ResultBody: reply.ResultBody,
		Attempts: st.Attempts, FirstFailure: st.FirstFailure, LastFailure: st.LastFailure,
	}
	if reply.Error != nil {
		dl.Error = *reply.Error
	}
	if json.Valid(payload) {
		dl.Payload = json.RawMessage(payload)
	} else {
		dl.PayloadBase64 = payload
	}
	if len(h) > 0 {
		dl.Headers = make(map[string][]string, len(h))
		for k, v := range h {
			dl.Headers[k] = v
		}
	}
	return dl
}

// publishDeadLetter stores dl, the dead letter of job, in the dead-letter
// stream and waits for the stream's acknowledgement: only then may the job
// be acked. An envelope too large for the NATS max payload first loses
// Salesforce's long answer, then carries its payload by reference (see
// payloadStore), so every job that was accepted can be dead-lettered. It
// runs under its own bounded context: a draining worker's cancelled
// context never loses a dead letter.
func (d *durable) publishDeadLetter(ctx context.Context, job sfblocks.JobIdentity, dl *sfblocks.DeadLetter) error {
	data, err := json.Marshal(dl)
	if err != nil {
		return fmt.Errorf("worker: encoding the dead letter: %w", err)
	}
	limit := d.w.nc.MaxPayload() - 1024
	if limit > 0 && int64(len(data)) > limit {
		// Keep what explains the failure; drop Salesforce's long answer.
		dl.ResultBody = truncate(dl.ResultBody, 1024)
		if data, err = json.Marshal(dl); err != nil {
			return fmt.Errorf("worker: encoding the dead letter: %w", err)
		}
	}
	if limit > 0 && int64(len(data)) > limit {
		payload := []byte(dl.Payload)
		if payload == nil {
			payload = dl.PayloadBase64
		}
		ref, err := d.payloadStore().put(ctx, job.Key(), payload)
		if err != nil {
			return err
		}
		dl.Payload, dl.PayloadBase64, dl.PayloadRef = nil, nil, ref
		if data, err = json.Marshal(dl); err != nil {
			return fmt.Errorf("worker: encoding the dead letter: %w", err)
		}
	}
	// Retried across a leader change with one message id, so a retry whose
	// first try was stored after all stores nothing new.
	msg := &nats.Msg{Subject: d.w.DLQSubject(job), Data: data}
	id := "dlq:" + newJobID()
	err = retryJS(ctx, d.cfg.FailoverWindow, d.ledger.timeout, "publishing the dead letter", d.cfg.DLQStream, func(ctx context.Context) error {
		_, err := d.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(d.cfg.DLQStream), jetstream.WithMsgID(id), jetstream.WithRetryAttempts(0))
		return err
	})
	if err != nil {
		return fmt.Errorf("worker: publishing the dead letter to %s (is the dead-letter stream full?): %w", d.cfg.DLQStream, err)
	}
	d.w.m.DeadLettered.WithLabelValues(string(dl.Block), dl.Path, dl.Reason).Inc()
	d.w.log.Warn().Str("job_id", dl.JobID).Str("block", string(dl.Block)).Str("path", dl.Path).Str("account", dl.Account).
		Str("code", string(dl.Error.Code)).Str("reason", dl.Reason).Int("attempts", dl.Attempts).
		Msg("job dead-lettered; see it with: sfblocks dlq show " + dl.JobID)
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// syncDeadLetterAs dead-letters a failed synchronous job after its caller
// got the reply: Inserts (a call log that could not be written must not
// vanish), and Searches only with DLQSyncSearches. INVALID_REQUEST is not
// dead-lettered: the caller got the error, and the job as sent can never
// succeed. It runs under its own bounded context, so a job cut short by
// the drain timeout is still dead-lettered.
func (d *durable) syncDeadLetterAs(t *task, reason string, candidates []string, subject string, payload []byte, h nats.Header, reply *sfblocks.Reply) {
	if reply.Status != sfblocks.StatusFailed || reply.Error == nil || reply.Error.Code == sfblocks.CodeInvalidRequest {
		return
	}
	if t.block == sfblocks.Search && !d.cfg.DLQSyncSearches {
		return
	}
	now := time.Now().UTC()
	dl := newDeadLetter(t.block, sfblocks.PathSync, reason, t.identity, subject, payload, h, reply,
		failureState{Attempts: 1, FirstFailure: now, LastFailure: now})
	dl.Candidates = candidates
	dl.TraceParent = natstrace.TraceParent(t.trace)
	if err := d.publishDeadLetter(context.Background(), t.identity, dl); err != nil {
		d.w.log.Error().Err(err).Str("job_id", t.identity.ID).Str("block", string(t.block)).
			Msg("could not dead-letter a failed synchronous job; the caller got the failure reply")
	}
}

// replays reads the replay headers of a job message.
func replays(h nats.Header) (count int, of uint64) {
	count, _ = strconv.Atoi(strings.TrimSpace(h.Get(sfblocks.HeaderReplays)))
	of, _ = strconv.ParseUint(strings.TrimSpace(h.Get(sfblocks.HeaderReplayOf)), 10, 64)
	return max(count, 0), of
}
