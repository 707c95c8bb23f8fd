package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/worker/internal/natstrace"
)

// Durable-job errors, wrapped in a *sfblocks.Error.
var (
	// ErrNoStream: no JetStream stream captures the durable job subject
	// (no worker with the durable path ever started on this prefix, or
	// JetStream is off).
	ErrNoStream = errors.New("client: no JetStream stream takes durable jobs on this subject (start a worker with --durable, on the same prefix)")
	// ErrNoResult: no result is kept for the job id (not finished yet,
	// unknown, or older than the results TTL).
	ErrNoResult = errors.New("client: no result is kept for this job id (not finished yet, unknown, or expired)")
)

// WithResultsBucket sets the workers' results bucket, read by
// [Client.Result] and [Client.DoDurable]. Defaults to [sfblocks.DefaultResultsBucket].
func WithResultsBucket(bucket string) Option {
	return func(c *Client) error {
		if !bucketRe.MatchString(bucket) {
			return fmt.Errorf("%w: results bucket %q: use letters, digits, '-' and '_' only", ErrInvalidOption, bucket)
		}
		c.bucket = bucket
		return nil
	}
}

var bucketRe = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// PublishOption configures one [Client.PublishDurable].
type PublishOption func(*publishOptions) error

type publishOptions struct {
	replyTo string
}

// WithReplyTo makes the worker publish the job's reply on subject (e.g. an
// inbox the caller subscribed to, shared by many jobs: replies carry their
// job id). Without it the result is only kept (see [Client.Result]).
func WithReplyTo(subject string) PublishOption {
	return func(o *publishOptions) error {
		if subject == "" || !prefixRe.MatchString(subject) {
			return fmt.Errorf("%w: reply subject %q: use dot-separated tokens without wildcards or spaces", ErrInvalidOption, subject)
		}
		o.replyTo = subject
		return nil
	}
}

// durableSubject is where durable jobs of block are published.
func (c *Client) durableSubject(block sfblocks.Block) string {
	return sfblocks.JobsSubject(c.prefix, block)
}

// jetStream returns the client's JetStream handle, created on first use.
func (c *Client) jetStream() (jetstream.JetStream, error) {
	c.jsMu.Lock()
	defer c.jsMu.Unlock()
	if c.js == nil {
		js, err := jetstream.New(c.nc)
		if err != nil {
			return nil, err
		}
		c.js = js
	}
	return c.js, nil
}

// resultsKV returns the results bucket, looked up on first use; a failed
// lookup (e.g. no worker created it yet) is tried again next time.
func (c *Client) resultsKV(ctx context.Context) (jetstream.KeyValue, error) {
	js, err := c.jetStream()
	if err != nil {
		return nil, err
	}
	c.jsMu.Lock()
	defer c.jsMu.Unlock()
	if c.kv == nil {
		kv, err := js.KeyValue(ctx, c.bucket)
		if err != nil {
			return nil, err
		}
		c.kv = kv
	}
	return c.kv, nil
}

// jobPayload encodes request like [Client.Do] and makes sure it carries an
// id: the request's own "id" when set, else a fresh one written into it. It
// returns the job's identity (block, the request's account, id). A request
// that is not a JSON object is sent as is with a fresh id in the header
// only (the worker answers INVALID_REQUEST).
func jobPayload(block sfblocks.Block, request any) ([]byte, sfblocks.JobIdentity, error) {
	job := sfblocks.JobIdentity{Block: block}
	data, err := encodeRequest(request)
	if err != nil {
		return nil, job, err
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(data, &obj) != nil || obj == nil {
		job.ID = nuid.Next()
		return data, job, nil
	}
	if raw, ok := obj["account"]; ok {
		_ = json.Unmarshal(raw, &job.Account) // a non-string account: the worker refuses the job
	}
	if raw, ok := obj["id"]; ok {
		if json.Unmarshal(raw, &job.ID) == nil && job.ID != "" {
			return data, job, nil
		}
		if !(string(raw) == `""` || string(raw) == "null") {
			// A non-string id: the worker refuses the job and says why.
			job.ID = nuid.Next()
			return data, job, nil
		}
	}
	job.ID = nuid.Next()
	obj["id"], _ = json.Marshal(job.ID)
	if data, err = json.Marshal(obj); err != nil {
		return nil, job, &sfblocks.Error{Code: sfblocks.CodeInvalidRequest, Message: "request cannot be encoded as JSON: " + err.Error(), Err: err}
	}
	return data, job, nil
}

// PublishDurable publishes a durable job of block and returns its id once
// JetStream has stored it (PubAck); it does not wait for the job to run. The
// id is the request's "id", or a generated one written into the job. The
// message's Nats-Msg-Id is [sfblocks.MsgID] of the job's identity (block,
// account, id), so publishing the same job again within the stream's
// duplicate window (2 minutes by default) stores nothing new, and a
// republish after it finds the job's kept result: retrying a failed
// publish is safe. With [WithReplyTo] the worker publishes the reply
// there; either way the result is kept and [Client.Result] reads it.
//
// On a JetStream cluster the publish rides through a leader change: it is
// retried with the same message id until ctx's deadline (see failover.go),
// so a job published while the stream elects a leader is stored once.
//
// Errors are *sfblocks.Error: INVALID_REQUEST (request not encodable, bad
// option), SALESFORCE_UNAVAILABLE wrapping [ErrNoStream] (no stream takes
// the subject) or the NATS error, TIMEOUT (no PubAck before ctx's deadline
// or the client timeout; its message says when the stream had no leader).
// All but INVALID_REQUEST are retryable.
func (c *Client) PublishDurable(ctx context.Context, block sfblocks.Block, request any, opts ...PublishOption) (string, error) {
	var o publishOptions
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return "", &sfblocks.Error{Code: sfblocks.CodeInvalidRequest, Message: err.Error(), Err: err}
		}
	}
	data, job, err := jobPayload(block, request)
	if err != nil {
		return "", err
	}
	ctx, span := c.startSend(ctx, c.durableSubject(block), block, trace.SpanKindProducer, len(data),
		trace.WithAttributes(attribute.String(natstrace.AttrJobID, job.ID)))
	_, err = c.publishDurable(ctx, job, data, o.replyTo)
	endSend(span, nil, err)
	return job.ID, err
}

// publishDurable publishes one job and returns its PubAck.
func (c *Client) publishDurable(ctx context.Context, job sfblocks.JobIdentity, data []byte, replyTo string) (*jetstream.PubAck, error) {
	block := job.Block
	js, err := c.jetStream()
	if err != nil {
		return nil, transportError(c.durableSubject(block), err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	subject := c.durableSubject(block)
	msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
	if replyTo != "" {
		msg.Header.Set(sfblocks.HeaderReplyTo, replyTo)
	}
	natstrace.Inject(ctx, msg.Header)
	_, known := c.stored.Load(subject)
	ack, err := publishThroughFailover(ctx, js, msg, sfblocks.MsgID(job), known)
	if err == nil {
		c.stored.Store(subject, struct{}{})
	}
	switch {
	case errors.Is(err, errNoLeader):
		return nil, &sfblocks.Error{Code: sfblocks.CodeTimeout, Retryable: true,
			Message: fmt.Sprintf("the jobs stream did not store the job published on %s before the deadline: %v; publishing it again with the same id is safe", subject, errNoLeader),
			Err:     fmt.Errorf("%w: %w", ErrTimeout, err)}
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		return nil, &sfblocks.Error{Code: sfblocks.CodeSalesforceUnavailable, Retryable: true,
			Message: fmt.Sprintf("no JetStream stream takes %s; start a worker with the durable path on this prefix", subject),
			Err:     fmt.Errorf("%w: %w", ErrNoStream, err)}
	case err != nil:
		return nil, transportError(subject, err)
	}
	return ack, nil
}

// DoDurable runs a job of block through the durable path and waits for its
// reply until ctx's deadline (or the client timeout when ctx has none): it
// subscribes to a fresh inbox, publishes the job with that inbox in the
// Reply-To header and waits for the PubAck (see [Client.PublishDurable] for
// the id), then waits for the reply. The job survives worker crashes and
// restarts: another worker takes it and a finished job is never run twice.
//
// When the id was already published within the duplicate window (a retried
// call), the first publish's inbox gets the reply, so DoDurable waits for
// the kept result instead. At the deadline it looks for the kept result one
// last time (the reply may have been lost while NATS restarted).
//
// Results are as for [Client.Do]: the reply and nil (ok, no_data); the reply
// and a *sfblocks.Error with its code (failed); nil and a *sfblocks.Error for
// transport failures (see [Client.PublishDurable]; TIMEOUT wrapping
// [ErrTimeout] when no reply came: the job is stored and will still run).
func (c *Client) DoDurable(ctx context.Context, block sfblocks.Block, request any) (reply *sfblocks.Reply, err error) {
	data, job, err := jobPayload(block, request)
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	ctx, span := c.startSend(ctx, c.durableSubject(block), block, trace.SpanKindProducer, len(data),
		trace.WithAttributes(attribute.String(natstrace.AttrJobID, job.ID)))
	defer func() { endSend(span, reply, err) }()
	inbox := c.nc.NewInbox()
	ch := make(chan *nats.Msg, 1)
	// Subscribed before publishing: the subscription reaches the server
	// ahead of the job on this connection, so the reply cannot be missed.
	sub, err := c.nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return nil, transportError(c.durableSubject(block), err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	ack, err := c.publishDurable(ctx, job, data, inbox)
	if err != nil {
		return nil, err
	}
	if ack.Duplicate {
		return c.awaitResult(ctx, job)
	}
	select {
	case msg := <-ch:
		return decodeReply(c.durableSubject(block), msg.Data)
	case <-ctx.Done():
		lctx, cancel := context.WithTimeout(context.Background(), c.timeout/10)
		defer cancel()
		if rep, err := c.Result(lctx, job); rep != nil {
			return rep, err
		}
		return nil, transportError(c.durableSubject(block), ctx.Err())
	}
}

// awaitResult watches the kept result of job until it appears or ctx ends.
func (c *Client) awaitResult(ctx context.Context, job sfblocks.JobIdentity) (*sfblocks.Reply, error) {
	kv, err := c.resultsKV(ctx)
	if err != nil {
		return nil, transportError(c.bucket, err)
	}
	watch, err := kv.Watch(ctx, job.Key())
	if err != nil {
		return nil, transportError(c.bucket, err)
	}
	defer func() { _ = watch.Stop() }()
	for {
		select {
		case e := <-watch.Updates():
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue // nil marks the end of the initial values
			}
			return decodeKept(c.bucket, e.Value())
		case <-ctx.Done():
			return nil, transportError(c.bucket, ctx.Err())
		}
	}
}

// Result returns the kept result of a finished job, as [Client.Do] returns
// replies (a failed job gives its reply and a *sfblocks.Error). The job is
// named by its identity: its block, its account as the job named it ("" for
// the default) and its id. Durable jobs and synchronous Inserts sent with
// an id of their own are kept, for the workers' results TTL (24 h by
// default). It returns a *sfblocks.Error wrapping [ErrNoResult] when none is
// kept (the job has not finished, is unknown, or its result expired), or a
// transport error (e.g. the results bucket does not exist yet).
func (c *Client) Result(ctx context.Context, job sfblocks.JobIdentity) (*sfblocks.Reply, error) {
	kv, err := c.resultsKV(ctx)
	if err != nil {
		return nil, transportError(c.bucket, err)
	}
	e, err := kv.Get(ctx, job.Key())
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return nil, &sfblocks.Error{Code: sfblocks.CodeTimeout, Retryable: true,
			Message: fmt.Sprintf("no result is kept for %s job %q of account %q (not finished yet, unknown, or expired)", job.Block, job.ID, job.Account),
			Err:     ErrNoResult}
	case err != nil:
		return nil, transportError(c.bucket, err)
	}
	return decodeKept(c.bucket, e.Value())
}

// decodeKept reads a results-bucket entry ([sfblocks.KeptResult]) as Do's
// results.
func decodeKept(bucket string, data []byte) (*sfblocks.Reply, error) {
	var k sfblocks.KeptResult
	if err := json.Unmarshal(data, &k); err != nil || len(k.Reply) == 0 {
		if err == nil {
			err = errors.New("no reply in the kept result")
		}
		return nil, &sfblocks.Error{Code: sfblocks.CodeInternal, Message: fmt.Sprintf("%v in %s: %v", ErrBadReply, bucket, err), Err: fmt.Errorf("%w: %w", ErrBadReply, err)}
	}
	return decodeReply(bucket, k.Reply)
}

// clientJS holds the lazily created JetStream handles of a Client.
type clientJS struct {
	jsMu sync.Mutex
	js   jetstream.JetStream
	kv   jetstream.KeyValue
	// stored holds the subjects a stream has stored a publish of (a
	// PubAck): their "no responders" is a leader election, with no need
	// to ask the JetStream API (see failover.go).
	stored sync.Map
}
