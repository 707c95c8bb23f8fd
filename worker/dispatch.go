package worker

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/nats-io/nuid"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks"
)

// Failures the worker itself answers with (the blocks package answers all
// others).
var (
	// errNotStarted answers jobs received but not started when the drain
	// timeout expired: they never ran, so retrying is safe.
	errNotStarted = &sfblocks.Error{
		Code:      sfblocks.CodeSalesforceUnavailable,
		Message:   "worker shutting down: the job was not started; retry it",
		Retryable: true,
	}
	// errCutShort answers jobs still running when the drain timeout expired.
	errCutShort = &sfblocks.Error{
		Code:      sfblocks.CodeTimeout,
		Message:   "worker shutting down: the job did not finish within the drain timeout and its outcome is unknown; check before retrying an insert",
		Retryable: true,
	}
	errNilReply = &sfblocks.Error{Code: sfblocks.CodeInternal, Message: "internal error: the job produced no reply"}
	errPanic    = &sfblocks.Error{Code: sfblocks.CodeInternal, Message: "internal error while running the job"}
)

// job is one received message on its way to a reply.
type job struct {
	block    sfblocks.Block
	req      micro.Request
	received time.Time
	answered atomic.Bool
	idOnce   sync.Once
	id       string
}

// fallbackID is the id used when the worker answers on its own: the id the
// caller gave, when it can be read, else a fresh one.
func (j *job) fallbackID() string {
	j.idOnce.Do(func() {
		if j.id = payloadID(j.req.Data()); j.id == "" {
			j.id = nuid.Next()
		}
	})
	return j.id
}

// payloadID returns the job's own id when it can be read and is a valid id,
// else "".
func payloadID(data []byte) string {
	var p struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(data, &p) == nil && p.ID != "" && len(p.ID) <= 128 && printable(p.ID) {
		return p.ID
	}
	return ""
}

func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// answer publishes reply as the job's only answer; a second answer (a late
// result after the drain timeout) is discarded. It reports whether reply was
// the answer.
func (w *Worker) answer(j *job, reply *sfblocks.Reply) bool {
	if !j.answered.CompareAndSwap(false, true) {
		w.m.LateReplies.Inc()
		w.log.Debug().Str("job_id", reply.ID).Str("block", string(j.block)).Str("status", string(reply.Status)).
			Msg("late job result discarded: the job was already answered")
		return false
	}
	took := time.Since(j.received)
	if reply.ID == "" {
		reply.ID = j.fallbackID()
	}
	if reply.DurationMS == 0 {
		reply.DurationMS = took.Milliseconds()
	}
	reply, data := w.encode(reply)
	w.record(j.block, sfblocks.PathSync, reply, took)

	subject := j.req.Reply()
	if subject == "" {
		w.log.Warn().Str("job_id", reply.ID).Str("block", string(j.block)).Msg("job had no reply subject; its result was not sent (use a request, not a publish)")
		return true
	}
	msg := replyMsg(subject, reply, data)
	// Published on the connection rather than with req.Respond: micro reads
	// the request's response error right after the handler returns, and the
	// handler returned long ago (the job ran on its own goroutine).
	if err := w.nc.PublishMsg(msg); err != nil {
		w.log.Error().Err(err).Str("job_id", reply.ID).Str("block", string(j.block)).Msg("publishing reply; the caller will time out")
	}
	return true
}

// encode returns the JSON of reply, as published (and, for durable jobs,
// kept). A reply that cannot be sent, because it does not encode or is
// larger than the NATS max payload, is replaced by a failure keeping its
// identity.
func (w *Worker) encode(reply *sfblocks.Reply) (*sfblocks.Reply, []byte) {
	if reply.Attempt == 0 {
		reply.Attempt = 1
	}
	data, err := marshalReply(reply)
	if err != nil {
		// e.g. a NaN in a record: still answer, with a failure.
		w.log.Error().Err(err).Str("job_id", reply.ID).Msg("encoding reply")
		reply = w.failure(reply, &sfblocks.Error{Code: sfblocks.CodeInternal, Message: "internal error: the reply could not be encoded as JSON"})
		data, _ = json.Marshal(reply)
	}
	if limit := w.nc.MaxPayload(); limit > 0 && int64(len(data))+1024 > limit {
		reply = w.failure(reply, &sfblocks.Error{Code: sfblocks.CodeInvalidRequest, Message: fmt.Sprintf(
			"reply of %d bytes exceeds the NATS max payload of %d bytes; lower max_records or select fewer fields", len(data), limit)})
		data, _ = json.Marshal(reply)
	}
	return reply, data
}

// marshalReply is json.Marshal(r), written by hand when it can be (see
// replyjson.go).
func marshalReply(r *sfblocks.Reply) ([]byte, error) {
	if data, ok := appendReply(make([]byte, 0, replySizeHint(r)), r); ok {
		return data, nil
	}
	return json.Marshal(r)
}

// replySizeHint guesses a reply's size, so that its buffer is allocated
// once for most replies: the members around the records, and twice each
// record's fields (a record is usually in records and in first).
func replySizeHint(r *sfblocks.Reply) int {
	n := 160 + len(r.ID) + len(r.ResultBody)
	if r.Error != nil {
		n += 96 + len(r.Error.Message)
	}
	for _, rec := range r.Records {
		n += 48 * len(rec)
	}
	if len(r.Records) > 0 {
		n += 48 * len(r.Records[0])
	}
	return n
}

// replyMsg builds the reply message; a failed reply also carries the micro
// error headers, so `nats req` and micro clients see the failure.
func replyMsg(subject string, reply *sfblocks.Reply, data []byte) *nats.Msg {
	msg := &nats.Msg{Subject: subject, Data: data}
	if reply.Status == sfblocks.StatusFailed && reply.Error != nil {
		msg.Header = nats.Header{
			micro.ErrorCodeHeader: []string{strconv.Itoa(reply.Error.Code.HTTPStatus())},
			micro.ErrorHeader:     []string{headerValue(string(reply.Error.Code) + ": " + reply.Error.Message)},
		}
	}
	return msg
}

// failure replaces a reply that cannot be sent with a failed one keeping its
// identity.
func (w *Worker) failure(r *sfblocks.Reply, err *sfblocks.Error) *sfblocks.Reply {
	f := blocks.FailureReply(r.ID, err)
	f.Account, f.DurationMS, f.Attempt = r.Account, r.DurationMS, r.Attempt
	return f
}

// headerValue makes a message safe as a NATS header value: one line, bounded.
func headerValue(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
	if len(s) > 512 {
		s = s[:512]
	}
	return s
}

// record logs the job's outcome and updates metrics and micro stats; path
// is pathSync or pathDurable.
func (w *Worker) record(block sfblocks.Block, path string, r *sfblocks.Reply, took time.Duration) {
	var code sfblocks.Code
	if r.Status == sfblocks.StatusFailed && r.Error != nil {
		code = r.Error.Code
	}
	w.outcomes.observe(block, r.Status, code, took)
	w.stats[block].count(r.Status, code, took)

	w.log.Info().Str("job_id", r.ID).Str("block", string(block)).Str("path", path).Str("account", r.Account).
		Str("status", string(r.Status)).Str("code", string(code)).Int64("duration_ms", r.DurationMS).
		Int("attempt", r.Attempt).Msg("job done")
	if d := w.log.Debug(); d.Enabled() {
		// Salesforce's messages may quote values: debug only.
		d = d.Str("job_id", r.ID)
		if r.Error != nil {
			d = d.Str("error", r.Error.Message).Str("salesforce_code", r.Error.SalesforceCode).Bool("retryable", r.Error.Retryable)
		}
		if r.Count != nil {
			d = d.Int("count", *r.Count)
		}
		d.Int("result_code", r.ResultCode).Str("object_id", r.ObjectID).Msg("job detail")
	}
}

// endpointStats are per-block outcome counters exported in the "data" of
// `nats micro stats`: micro's own num_errors cannot count job failures,
// because micro reads the outcome when the handler returns, before the job
// (running on its own goroutine) has finished.
type endpointStats struct {
	inFlight atomic.Int64
	mu       sync.Mutex
	ok       int64
	noData   int64
	failed   int64
	byCode   map[sfblocks.Code]int64
	// jobTime is the summed duration of the finished jobs, from receipt to
	// outcome: micro's processing_time measures only the handler, which
	// hands the job to its own goroutine and returns.
	jobTime time.Duration
}

func (s *endpointStats) count(status sfblocks.Status, code sfblocks.Code, took time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.jobTime += took
	switch status {
	case sfblocks.StatusOK:
		s.ok++
	case sfblocks.StatusNoData:
		s.noData++
	default:
		s.failed++
		if s.byCode == nil {
			s.byCode = make(map[sfblocks.Code]int64)
		}
		s.byCode[code]++
	}
}

// EndpointData is the "data" object of each endpoint in `nats micro stats`.
// micro's own processing_time and average_processing_time measure the
// endpoint handler, which takes a job and hands it to a slot: dispatch
// time. The jobs' own time, from receipt to reply (synchronous and durable
// jobs of the block), is JobTime and AverageJobTime, in nanoseconds as
// micro's.
type EndpointData struct {
	// InFlight is the block's jobs running now, both paths.
	InFlight int64 `json:"in_flight"`
	// OK, NoData and Failed count the block's finished jobs, both paths,
	// by status; Errors counts the failed ones by code.
	OK     int64                   `json:"ok"`
	NoData int64                   `json:"no_data"`
	Failed int64                   `json:"failed"`
	Errors map[sfblocks.Code]int64 `json:"errors,omitempty"`
	// JobTime is the summed duration of those finished jobs, from receipt
	// to outcome, in nanoseconds as micro's processing_time (which times
	// only the handler's dispatch); AverageJobTime is JobTime divided by
	// their number.
	JobTime        time.Duration `json:"job_time"`
	AverageJobTime time.Duration `json:"average_job_time"`
}

func (w *Worker) endpointStats(e *micro.Endpoint) any {
	s, ok := w.stats[sfblocks.Block(e.Name)]
	if !ok {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d := EndpointData{InFlight: s.inFlight.Load(), OK: s.ok, NoData: s.noData, Failed: s.failed, JobTime: s.jobTime}
	if n := s.ok + s.noData + s.failed; n > 0 {
		d.AverageJobTime = s.jobTime / time.Duration(n)
	}
	if len(s.byCode) > 0 {
		d.Errors = make(map[sfblocks.Code]int64, len(s.byCode))
		for k, v := range s.byCode {
			d.Errors[k] = v
		}
	}
	return d
}

// asyncError logs errors NATS reports on the service's subscriptions.
func (w *Worker) asyncError(_ micro.Service, err *micro.NATSError) {
	if errors.Is(err, nats.ErrSlowConsumer) {
		// Logged before it is counted: whoever sees the count (an alert, a
		// test) finds the log line already written.
		w.log.Error().Str("subject", err.Subject).
			Msg("slow consumer: the NATS client dropped jobs because all in-flight slots were busy and the pending limits were exceeded; add workers or raise the in-flight/pending limits")
		w.m.SlowConsumer.Inc()
		return
	}
	w.log.Error().Str("subject", err.Subject).Str("error", err.Description).Msg("NATS subscription error")
}
