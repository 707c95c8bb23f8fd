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

	"github.com/sfblocks/sfblocks/blocks"
)

// Why a job was dead-lettered, in [DeadLetter.Reason].
const (
	// ReasonPermanent: a failure that sending the job again cannot fix
	// (error.retryable false: INVALID_REQUEST, AUTH_FAILED, a Salesforce
	// refusal such as REQUIRED_FIELD_MISSING...).
	ReasonPermanent = "permanent"
	// ReasonAttemptsExhausted: a retryable failure on the last of
	// MaxAttempts attempts.
	ReasonAttemptsExhausted = "attempts_exhausted"
	// ReasonAmbiguousCreate: an Insert without external_id failed in a way
	// that may have created the record anyway (TIMEOUT, dropped
	// connection); it is not retried, so a retry cannot create a second
	// record. Check Salesforce before replaying it.
	ReasonAmbiguousCreate = "ambiguous_create"
	// ReasonMaxDeliveries: the consumer's MaxDeliver was reached (only when
	// MaxDeliver is set).
	ReasonMaxDeliveries = "max_deliveries"
	// ReasonSyncFailure: a failed synchronous (micro request) Insert, or
	// Search with DLQSyncSearches; the caller got the failure reply.
	ReasonSyncFailure = "sync_failure"
)

// DeadLetter is the JSON envelope of one message of the dead-letter stream:
// everything needed to understand the failure and replay the job. Package
// worker/client reads the same shape.
type DeadLetter struct {
	// JobID is the job's id: the results key and the dead letter's subject
	// derive from it.
	JobID string `json:"job_id"`
	// Block is search or insert.
	Block blocks.Block `json:"block"`
	// Account is the account that ran the job, when one was chosen.
	Account string `json:"account,omitempty"`
	// Path is "durable" (JetStream work queue) or "sync" (micro request).
	Path string `json:"path"`
	// Reason is one of the Reason* constants.
	Reason string `json:"reason"`
	// Subject is the subject the job was received on.
	Subject string `json:"subject"`
	// Payload is the job as received, when it is JSON; PayloadBase64 holds
	// it otherwise.
	Payload       json.RawMessage `json:"payload,omitempty"`
	PayloadBase64 []byte          `json:"payload_base64,omitempty"`
	// Headers are the job message's headers as received (Reply-To,
	// Nats-Msg-Id...).
	Headers map[string][]string `json:"headers,omitempty"`
	// Error is the final failure, as the caller's reply carried it.
	Error blocks.ErrorInfo `json:"error"`
	// ResultCode and ResultBody are Salesforce's HTTP status and answer,
	// when Salesforce answered.
	ResultCode int    `json:"result_code,omitempty"`
	ResultBody string `json:"result_body,omitempty"`
	// Attempts is how many times the job ran.
	Attempts int `json:"attempts"`
	// FirstFailure and LastFailure bound the job's failures.
	FirstFailure time.Time `json:"first_failure"`
	LastFailure  time.Time `json:"last_failure"`
	// Replays is how many times this job was replayed from the dead-letter
	// stream before this dead letter.
	Replays int `json:"replays,omitempty"`
	// ReplayOf is the stream sequence of the dead letter this run replayed;
	// that one was replaced by this one.
	ReplayOf uint64 `json:"replay_of,omitempty"`
}

// DLQSubject returns the subject of job id's dead letter:
// "<prefix>.dlq.<block>.<ResultKey(id)>". The stream keeps one message per
// subject, so a job has at most one dead letter, its newest.
func (w *Worker) DLQSubject(block blocks.Block, jobID string) string {
	return w.cfg.prefix + ".dlq." + string(block) + "." + ResultKey(jobID)
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
func newDeadLetter(block blocks.Block, path, reason, jobID, subject string, payload []byte, h nats.Header, reply *blocks.Reply, st failureState) *DeadLetter {
	dl := &DeadLetter{
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
func (d *durable) publishDeadLetter(ctx context.Context, dl *DeadLetter) error {
	data, err := json.Marshal(dl)
	if err != nil {
		return fmt.Errorf("worker: encoding the dead letter: %w", err)
	}
	if max := d.w.nc.MaxPayload(); max > 0 && int64(len(data)) > max-1024 {
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
func (d *durable) syncDeadLetter(block blocks.Block, subject string, payload []byte, h nats.Header, reply *blocks.Reply) {
	if reply.Status != blocks.StatusFailed || reply.Error == nil || reply.Error.Code == blocks.CodeInvalidRequest {
		return
	}
	if block == blocks.Search && !d.cfg.DLQSyncSearches {
		return
	}
	now := time.Now().UTC()
	dl := newDeadLetter(block, pathSync, ReasonSyncFailure, reply.ID, subject, payload, h, reply,
		failureState{Attempts: 1, FirstFailure: now, LastFailure: now})
	if err := d.publishDeadLetter(d.w.base, dl); err != nil {
		d.w.log.Error().Err(err).Str("job_id", reply.ID).Str("block", string(block)).
			Msg("could not dead-letter a failed synchronous job; the caller got the failure reply")
	}
}

// replays reads the replay headers of a job message.
func replays(h nats.Header) (count int, of uint64) {
	count, _ = strconv.Atoi(strings.TrimSpace(h.Get(HeaderReplays)))
	of, _ = strconv.ParseUint(strings.TrimSpace(h.Get(HeaderReplayOf)), 10, 64)
	return max(count, 0), of
}
