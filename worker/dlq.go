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
)

// DLQSubject returns the subject of job id's dead letter on this worker's
// prefix; see [sfblocks.DLQSubject].
func (w *Worker) DLQSubject(block sfblocks.Block, jobID string) string {
	return sfblocks.DLQSubject(w.cfg.prefix, block, jobID)
}

// dlqStreamConfig is the dead-letter stream: limits retention (a dead
// letter stays until it expires, is replayed successfully or purged), one
// message per job. With a size cap it discards new messages, so a full
// stream makes dead-lettering fail (and the job is handed back) instead of
// silently dropping the oldest dead letters.
func (d *durable) dlqStreamConfig() jetstream.StreamConfig {
	cfg := jetstream.StreamConfig{
		Name:              d.cfg.DLQStream,
		Description:       "sfblocks dead letters: durable jobs that failed for good, and failed synchronous inserts",
		Subjects:          []string{d.w.cfg.prefix + ".dlq.>"},
		Retention:         jetstream.LimitsPolicy,
		Storage:           jetstream.FileStorage,
		MaxAge:            d.cfg.DLQMaxAge,
		MaxMsgsPerSubject: 1,
		MaxMsgs:           -1,
		MaxBytes:          -1,
		Discard:           jetstream.DiscardOld,
		Replicas:          d.cfg.Replicas,
	}
	if d.cfg.DLQMaxMsgs > 0 {
		cfg.MaxMsgs = d.cfg.DLQMaxMsgs
	}
	if d.cfg.DLQMaxBytes > 0 {
		cfg.MaxBytes = d.cfg.DLQMaxBytes
	}
	if d.cfg.DLQMaxMsgs > 0 || d.cfg.DLQMaxBytes > 0 {
		cfg.Discard = jetstream.DiscardNew
	}
	return cfg
}

// newDeadLetter builds the envelope of a job whose final failure is reply.
func newDeadLetter(block sfblocks.Block, path, reason, jobID, subject string, payload []byte, h nats.Header, reply *sfblocks.Reply, st failureState) *sfblocks.DeadLetter {
	dl := &sfblocks.DeadLetter{
		JobID: jobID, Block: block, Account: reply.Account, Path: path, Reason: reason, Subject: subject,
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

// publishDeadLetter stores dl in the dead-letter stream and waits for the
// stream's acknowledgement: only then may the job be acked.
func (d *durable) publishDeadLetter(ctx context.Context, dl *sfblocks.DeadLetter) error {
	data, err := json.Marshal(dl)
	if err != nil {
		return fmt.Errorf("worker: encoding the dead letter: %w", err)
	}
	if limit := d.w.nc.MaxPayload(); limit > 0 && int64(len(data)) > limit-1024 {
		// Keep what explains the failure; drop Salesforce's long answer.
		dl.ResultBody = truncate(dl.ResultBody, 1024)
		if data, err = json.Marshal(dl); err != nil {
			return fmt.Errorf("worker: encoding the dead letter: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, d.res.timeout)
	defer cancel()
	msg := &nats.Msg{Subject: d.w.DLQSubject(dl.Block, dl.JobID), Data: data}
	if _, err := d.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(d.cfg.DLQStream)); err != nil {
		return fmt.Errorf("worker: publishing the dead letter to %s: %w", d.cfg.DLQStream, err)
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

// syncDeadLetter dead-letters a failed synchronous job after its caller got
// the reply: Inserts (a call log that could not be written must not
// vanish), and Searches only with DLQSyncSearches. INVALID_REQUEST is not
// dead-lettered: the caller got the error, and the job as sent can never
// succeed.
func (d *durable) syncDeadLetter(block sfblocks.Block, subject string, payload []byte, h nats.Header, reply *sfblocks.Reply) {
	if reply.Status != sfblocks.StatusFailed || reply.Error == nil || reply.Error.Code == sfblocks.CodeInvalidRequest {
		return
	}
	if block == sfblocks.Search && !d.cfg.DLQSyncSearches {
		return
	}
	now := time.Now().UTC()
	dl := newDeadLetter(block, sfblocks.PathSync, sfblocks.ReasonSyncFailure, reply.ID, subject, payload, h, reply,
		failureState{Attempts: 1, FirstFailure: now, LastFailure: now})
	if err := d.publishDeadLetter(d.w.base, dl); err != nil {
		d.w.log.Error().Err(err).Str("job_id", reply.ID).Str("block", string(block)).
			Msg("could not dead-letter a failed synchronous job; the caller got the failure reply")
	}
}

// replays reads the replay headers of a job message.
func replays(h nats.Header) (count int, of uint64) {
	count, _ = strconv.Atoi(strings.TrimSpace(h.Get(sfblocks.HeaderReplays)))
	of, _ = strconv.ParseUint(strings.TrimSpace(h.Get(sfblocks.HeaderReplayOf)), 10, 64)
	return max(count, 0), of
}
