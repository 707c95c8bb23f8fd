package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/worker/internal/natstrace"
)

// Defaults of [ReplayOptions].
const (
	// DefaultReplayConcurrency is how many replays wait for their reply at
	// once.
	DefaultReplayConcurrency = 8
	// DefaultReplayTimeout is how long a replay waits for its reply: long
	// enough for a job's retries with the workers' default backoff.
	DefaultReplayTimeout = 3 * time.Minute
)

// Limiter paces replays; Wait blocks until the next one may go, or fails
// when ctx ends.
type Limiter interface {
	Wait(ctx context.Context) error
}

// ReplayOptions configures [Client.ReplayDeadLetters]. The zero value
// replays every selected dead letter, 8 at a time, without a rate limit.
type ReplayOptions struct {
	// DryRun lists what would be replayed and publishes nothing.
	DryRun bool
	// Limiter, when set, paces the replays: each one waits for it before
	// it is published. A *rate.Limiter of golang.org/x/time/rate fits (as
	// `sfblocks dlq replay --rate` uses); nil means no limit.
	Limiter Limiter
	// Concurrency is how many replays wait for their reply at once.
	// Defaults to 8.
	Concurrency int
	// Timeout is how long one replay waits for its reply. Defaults to 3m.
	// A replay without a reply in time keeps its dead letter (the job is
	// still queued and will run; replaying it again later is safe).
	Timeout time.Duration
	// Payload replaces the dead letter's payload (e.g. a corrected job); it
	// needs exactly one selected dead letter. Its "id" is set to the job id.
	Payload []byte
	// Progress, when set, is called once the dead letters are selected
	// (Done 0, Total known), then after each dead letter is settled, one
	// call at a time.
	Progress func(ReplayProgress)
}

// Outcomes of one replay, in [ReplayResult.Outcome].
const (
	ReplaySucceeded   = "succeeded"    // replied ok or no_data; its dead letter was deleted
	ReplayFailedAgain = "failed_again" // failed (a fresh dead letter replaced the old one) or no reply in time
	ReplaySkipped     = "skipped"      // not replayed; Error says why
	ReplayDryRun      = "would_replay" // DryRun: would be replayed
)

// ReplayResult is the outcome of one dead letter's replay.
type ReplayResult struct {
	Seq     uint64          `json:"seq"`
	JobID   string          `json:"job_id"`
	Block   sfblocks.Block  `json:"block"`
	Outcome string          `json:"outcome"`
	Reply   *sfblocks.Reply `json:"reply,omitempty"`
	Error   string          `json:"error,omitempty"`
}

// ReplaySummary counts a replay's outcomes.
type ReplaySummary struct {
	Selected    int            `json:"selected"`
	Replayed    int            `json:"replayed"`
	Succeeded   int            `json:"succeeded"`
	FailedAgain int            `json:"failed_again"`
	Skipped     int            `json:"skipped"`
	Results     []ReplayResult `json:"results"`
}

// ReplayProgress is passed to [ReplayOptions.Progress].
type ReplayProgress struct {
	Done, Total                     int
	Succeeded, FailedAgain, Skipped int
}

// ReplayDeadLetters replays the dead letters f selects: each job is
// published again to "<prefix>.jobs.<block>" with its original job id in
// the payload (so a job whose success is kept is answered from it and
// creates nothing), a Nats-Msg-Id of its own ("<job id>/replay/<seq>", so
// the stream's duplicate window does not drop it) and this client's inbox
// as Reply-To. A dead letter is deleted only once its replay succeeded; a
// replay that fails again leaves a fresh dead letter in place of the old
// one. INVALID_REQUEST dead letters and payloads that are not JSON objects
// are skipped unless Payload replaces them.
//
// Tracing: the replay is a span, "sfblocks.dlq.replay", a child of ctx's;
// each replayed job is a producer span under it that links to the run it
// replays (the dead letter's TraceParent, else the traceparent the job
// first came with), and the job carries that link to the worker in
// [sfblocks.HeaderReplayTraceParent]. The replay is not made a child of
// the original trace, which may have ended days ago.
//
// The error is for failures to select or to publish (NATS down, no
// stream); per-job outcomes are in the summary.
func (c *Client) ReplayDeadLetters(ctx context.Context, f DLQFilter, o ReplayOptions) (*ReplaySummary, error) {
	ctx, span := c.tracer.Start(ctx, "sfblocks.dlq.replay")
	defer span.End()
	dls, err := c.ListDeadLetters(ctx, f)
	if err != nil {
		return nil, err
	}
	if o.Payload != nil && len(dls) != 1 {
		return nil, fmt.Errorf("%w: an edited payload replaces exactly one dead letter; %d are selected", ErrInvalidOption, len(dls))
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultReplayConcurrency
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultReplayTimeout
	}
	sum := &ReplaySummary{Selected: len(dls), Results: make([]ReplayResult, len(dls))}
	if span.IsRecording() {
		span.SetAttributes(attribute.Int("sfblocks.dlq.selected", len(dls)), attribute.Bool("sfblocks.dlq.dry_run", o.DryRun))
		defer func() {
			span.SetAttributes(attribute.Int("sfblocks.dlq.succeeded", sum.Succeeded), attribute.Int("sfblocks.dlq.failed_again", sum.FailedAgain),
				attribute.Int("sfblocks.dlq.skipped", sum.Skipped))
		}()
	}
	var mu sync.Mutex
	done := 0
	settled := func(i int, r ReplayResult) {
		mu.Lock()
		defer mu.Unlock()
		sum.Results[i] = r
		done++
		switch r.Outcome {
		case ReplaySucceeded:
			sum.Replayed++
			sum.Succeeded++
		case ReplayFailedAgain:
			sum.Replayed++
			sum.FailedAgain++
		case ReplaySkipped:
			sum.Skipped++
		}
		if o.Progress != nil {
			o.Progress(ReplayProgress{Done: done, Total: len(dls), Succeeded: sum.Succeeded, FailedAgain: sum.FailedAgain, Skipped: sum.Skipped})
		}
	}

	if o.Progress != nil {
		o.Progress(ReplayProgress{Total: len(dls)})
	}

	inbox := c.nc.NewInbox()
	waiters := map[string]chan *nats.Msg{}
	var wmu sync.Mutex
	sub, err := c.nc.Subscribe(inbox+".*", func(m *nats.Msg) {
		token := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
		wmu.Lock()
		ch := waiters[token]
		wmu.Unlock()
		if ch != nil {
			select {
			case ch <- m:
			default:
			}
		}
	})
	if err != nil {
		return nil, transportError(inbox, err)
	}
	defer func() { _ = sub.Unsubscribe() }()

	// Each replay is published and awaited on its own goroutine, at most
	// Concurrency at once. A publish that fails for a reason other than a
	// duplicate (NATS down, no stream) stops the whole replay: the group's
	// context ends, and the replays still waiting keep their dead letters.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.Concurrency)
	for i, dl := range dls {
		res := ReplayResult{Seq: dl.Seq, JobID: dl.JobID, Block: dl.Block}
		if dl.PayloadRef != "" && o.Payload == nil && !o.DryRun {
			if err := c.loadPayload(ctx, dl); err != nil {
				res.Outcome, res.Error = ReplaySkipped, err.Error()
				settled(i, res)
				continue
			}
		}
		payload, why := replayPayload(dl, o.Payload)
		if why != "" {
			res.Outcome, res.Error = ReplaySkipped, why
			settled(i, res)
			continue
		}
		if o.DryRun {
			res.Outcome = ReplayDryRun
			settled(i, res)
			continue
		}
		if o.Limiter != nil {
			if err := o.Limiter.Wait(gctx); err != nil {
				break
			}
		}
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			token := strconv.FormatUint(dl.Seq, 10)
			ch := make(chan *nats.Msg, 1)
			wmu.Lock()
			waiters[token] = ch
			wmu.Unlock()
			defer func() {
				wmu.Lock()
				delete(waiters, token)
				wmu.Unlock()
			}()
			rctx, span := c.startReplay(gctx, dl, len(payload))
			if err := c.publishReplay(rctx, dl, payload, inbox+"."+token); err != nil {
				endSend(span, nil, err)
				var dup *duplicateError
				if !errors.As(err, &dup) {
					return err
				}
				res.Outcome, res.Error = ReplayFailedAgain, err.Error()
				settled(i, res)
				return nil
			}
			r := c.awaitReplay(gctx, dl, ch, res, o.Timeout)
			var noReply error
			if r.Reply == nil {
				noReply = &sfblocks.Error{Code: sfblocks.CodeTimeout, Message: r.Error}
			}
			endSend(span, r.Reply, noReply)
			settled(i, r)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return sum, err
	}
	return sum, ctx.Err()
}

type duplicateError struct{ msgID string }

func (e *duplicateError) Error() string {
	return "a replay of this dead letter (" + e.msgID + ") was published within the stream's duplicate window and is still pending; wait for it"
}

// replayPayload returns the payload to publish with the job id in it, or
// why the dead letter is skipped.
func replayPayload(dl *sfblocks.DeadLetter, edited []byte) ([]byte, string) {
	payload := []byte(dl.Payload)
	if edited != nil {
		payload = edited
	} else if dl.Error.Code == sfblocks.CodeInvalidRequest {
		return nil, "the job as sent is invalid (INVALID_REQUEST); replay it with an edited payload"
	}
	if dl.Block != sfblocks.Search && dl.Block != sfblocks.Insert {
		return nil, fmt.Sprintf("unknown block %q", dl.Block)
	}
	var obj map[string]json.RawMessage
	if len(payload) == 0 || json.Unmarshal(payload, &obj) != nil || obj == nil {
		return nil, "the payload is not a JSON object; replay it with an edited payload"
	}
	id, _ := json.Marshal(dl.JobID)
	obj["id"] = id
	out, err := json.Marshal(obj)
	if err != nil {
		return nil, "the payload cannot be encoded: " + err.Error()
	}
	return out, ""
}

// publishReplay publishes one replay and waits for the stream's PubAck.
func (c *Client) publishReplay(ctx context.Context, dl *sfblocks.DeadLetter, payload []byte, replyTo string) error {
	js, err := c.jetStream()
	if err != nil {
		return transportError(c.durableSubject(dl.Block), err)
	}
	msg := &nats.Msg{Subject: c.durableSubject(dl.Block), Data: payload, Header: nats.Header{}}
	for k, v := range dl.Headers {
		if strings.HasPrefix(k, "Nats-") || strings.HasPrefix(k, "Sfblocks-") || k == sfblocks.HeaderReplyTo ||
			strings.EqualFold(k, sfblocks.HeaderTraceParent) || strings.EqualFold(k, sfblocks.HeaderTraceState) {
			// The original's trace context is not the replay's: the
			// replayer's context goes instead, with a link to it.
			continue
		}
		msg.Header[k] = v
	}
	natstrace.Inject(ctx, msg.Header)
	if sc, ok := natstrace.Link(dl); ok {
		msg.Header.Set(sfblocks.HeaderReplayTraceParent, natstrace.TraceParent(sc))
	}
	msg.Header.Set(sfblocks.HeaderJobID, dl.JobID)
	msg.Header.Set(sfblocks.HeaderReplayOf, strconv.FormatUint(dl.Seq, 10))
	msg.Header.Set(sfblocks.HeaderReplays, strconv.Itoa(dl.Replays+1))
	msg.Header.Set(sfblocks.HeaderReplyTo, replyTo)
	msgID := dl.JobID + "/replay/" + strconv.FormatUint(dl.Seq, 10)
	pctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	ack, err := js.PublishMsg(pctx, msg, jetstream.WithMsgID(msgID))
	switch {
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		return &sfblocks.Error{Code: sfblocks.CodeSalesforceUnavailable, Retryable: true,
			Message: fmt.Sprintf("no JetStream stream takes %s; start a worker with the durable path on this prefix", msg.Subject),
			Err:     fmt.Errorf("%w: %w", ErrNoStream, err)}
	case err != nil:
		return transportError(msg.Subject, err)
	case ack.Duplicate:
		return &duplicateError{msgID: msgID}
	}
	return nil
}

// startReplay starts the producer span of one replayed job, linked to the
// run it replays.
func (c *Client) startReplay(ctx context.Context, dl *sfblocks.DeadLetter, size int) (context.Context, trace.Span) {
	opts := []trace.SpanStartOption{trace.WithAttributes(attribute.String(natstrace.AttrJobID, dl.JobID),
		attribute.Int64(natstrace.AttrReplayOf, int64(dl.Seq)))}
	if sc, ok := natstrace.Link(dl); ok {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc,
			Attributes: []attribute.KeyValue{attribute.String(natstrace.AttrLinkKind, natstrace.LinkReplayOf)}}))
	}
	return c.startSend(ctx, c.durableSubject(dl.Block), dl.Block, trace.SpanKindProducer, size, opts...)
}

// awaitReplay waits for one replay's reply and deletes the dead letter on
// success.
func (c *Client) awaitReplay(ctx context.Context, dl *sfblocks.DeadLetter, ch chan *nats.Msg, res ReplayResult, timeout time.Duration) ReplayResult {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case m := <-ch:
		reply, _ := decodeReply(c.durableSubject(dl.Block), m.Data)
		res.Reply = reply
		if reply == nil || reply.Status == sfblocks.StatusFailed {
			res.Outcome = ReplayFailedAgain
			if reply != nil && reply.Error != nil {
				res.Error = string(reply.Error.Code) + ": " + reply.Error.Message
			}
			return res
		}
		if _, err := c.deleteDeadLetters(context.WithoutCancel(ctx), []*sfblocks.DeadLetter{dl}); err != nil {
			res.Error = "replayed, but its dead letter could not be deleted: " + err.Error()
		}
		res.Outcome = ReplaySucceeded
		return res
	case <-t.C:
		res.Outcome, res.Error = ReplayFailedAgain, fmt.Sprintf("no reply within %v; the replay is queued and will still run; the dead letter is kept", timeout)
	case <-ctx.Done():
		res.Outcome, res.Error = ReplayFailedAgain, "cancelled while waiting for the reply; the replay is queued and will still run; the dead letter is kept"
	}
	return res
}

// loadPayload fills the payload of a dead letter that carries it by
// reference (a job too large for its envelope) from the object store.
func (c *Client) loadPayload(ctx context.Context, dl *sfblocks.DeadLetter) error {
	bucket, name, ok := strings.Cut(dl.PayloadRef, "/")
	if !ok {
		return fmt.Errorf("the dead letter's payload_ref %q is not bucket/name", dl.PayloadRef)
	}
	js, err := c.jetStream()
	if err != nil {
		return transportError(bucket, err)
	}
	obj, err := js.ObjectStore(ctx, bucket)
	if err != nil {
		return transportError(bucket, err)
	}
	data, err := obj.GetBytes(ctx, name)
	if err != nil {
		return fmt.Errorf("the dead letter's payload %s cannot be read (expired?): %w", dl.PayloadRef, err)
	}
	if json.Valid(data) {
		dl.Payload = data
	} else {
		dl.PayloadBase64 = data
	}
	return nil
}
