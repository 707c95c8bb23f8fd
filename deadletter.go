package sfblocks

import (
	"encoding/json"
	"time"
)

// Why a job was dead-lettered, in [DeadLetter.Reason].
const (
	// ReasonPermanent: a failure that sending the job again cannot fix
	// (error.retryable false: INVALID_REQUEST, AUTH_FAILED, a Salesforce
	// refusal such as REQUIRED_FIELD_MISSING...).
	ReasonPermanent = "permanent"
	// ReasonAttemptsExhausted: a retryable failure on the last of the
	// worker's max attempts.
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
	// Search when the worker dead-letters those too; the caller got the
	// failure reply.
	ReasonSyncFailure = "sync_failure"
	// ReasonReplyRefused: a durable job whose Reply-To header named a
	// subject the workers do not reply to (a system subject such as
	// $KV.…, one of the fleet's own subjects, or one outside the workers'
	// reply subjects); it was not run.
	ReasonReplyRefused = "reply_refused"
)

// The paths a job can take, in [DeadLetter.Path] and in the workers' logs.
const (
	// PathSync is the NATS micro request/reply path.
	PathSync = "sync"
	// PathDurable is the JetStream work-queue path.
	PathDurable = "durable"
)

// DeadLetter is the JSON envelope of one message of the dead-letter stream:
// everything needed to understand the failure and replay the job. Workers
// write it; the client and `sfblocks dlq` read it.
type DeadLetter struct {
	// Seq is the dead letter's stream sequence, and Stored when the stream
	// stored it. Readers fill both from the stream's metadata; they are not
	// part of the stored JSON.
	Seq    uint64    `json:"seq,omitempty"`
	Stored time.Time `json:"stored,omitzero"`

	// JobID is the job's id: the dead letter's subject derives from it.
	JobID string `json:"job_id"`
	// Block is search or insert.
	Block Block `json:"block"`
	// Account is the account that ran the job, when one was chosen.
	Account string `json:"account,omitempty"`
	// Path is [PathDurable] or [PathSync].
	Path string `json:"path"`
	// Reason is one of the Reason* constants.
	Reason string `json:"reason"`
	// Subject is the subject the job was received on.
	Subject string `json:"subject"`
	// Payload is the job as received, when it is JSON; PayloadBase64 holds
	// it otherwise.
	Payload       json.RawMessage `json:"payload,omitempty"`
	PayloadBase64 []byte          `json:"payload_base64,omitempty"`
	// PayloadRef names where the payload is kept when the envelope could
	// not carry it within the NATS max payload: "<object store
	// bucket>/<object name>". Payload and PayloadBase64 are empty then.
	PayloadRef string `json:"payload_ref,omitempty"`
	// Headers are the job message's headers as received (Reply-To,
	// Nats-Msg-Id...).
	Headers map[string][]string `json:"headers,omitempty"`
	// TraceParent is the W3C traceparent of the run that failed for good:
	// its job span when the worker traces, else the context the job
	// arrived with (which Headers also keep); empty when there was none.
	// A replay links to it (see [HeaderReplayTraceParent]), so the
	// replay's trace leads back to the original's.
	TraceParent string `json:"traceparent,omitempty"`
	// Error is the final failure, as the caller's reply carried it.
	Error ErrorInfo `json:"error"`
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
	// Candidates are, for an ambiguous_create, the ids of the records an
	// earlier attempt may have created: check them in Salesforce before
	// replaying the job (a replay creates nothing when one of them is
	// adopted as the job's, but cannot tell them apart either).
	Candidates []string `json:"candidates,omitempty"`
}
