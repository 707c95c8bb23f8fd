package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/worker/internal/natstrace"
)

// Defaults of the client options.
const (
	// DefaultTimeout bounds a request whose context has no deadline; it is
	// a little longer than the workers' default job timeout (30s) so the
	// worker's own TIMEOUT reply arrives first.
	DefaultTimeout = 35 * time.Second
)

// Transport errors, wrapped in a *sfblocks.Error (see [Client.Do]).
var (
	// ErrNoWorkers: no worker is subscribed to the block's subject.
	ErrNoWorkers = errors.New("client: no sfblocks worker is listening (is the worker running and on the same prefix?)")
	// ErrTimeout: no reply before the context's deadline or the default
	// timeout; the job may still have run.
	ErrTimeout = errors.New("client: no reply from the worker before the deadline; the job may still have run")
	// ErrBadReply: the reply was not a valid JSON reply.
	ErrBadReply = errors.New("client: the worker's reply is not a valid JSON reply")
	// ErrInvalidOption is wrapped by option validation errors.
	ErrInvalidOption = errors.New("client: invalid option")
)

// Option configures a [Client].
type Option func(*Client) error

var prefixRe = regexp.MustCompile(`^[^.\s*>]+(\.[^.\s*>]+)*$`)

// WithPrefix sets the subject prefix the workers serve on. Defaults to
// "sfblocks".
func WithPrefix(prefix string) Option {
	return func(c *Client) error {
		if !prefixRe.MatchString(prefix) {
			return fmt.Errorf("%w: prefix %q: use dot-separated tokens without '*', '>' or spaces", ErrInvalidOption, prefix)
		}
		c.prefix = prefix
		return nil
	}
}

// WithTimeout sets the request timeout used when the context has no
// deadline. Defaults to 35s. Must be positive.
func WithTimeout(d time.Duration) Option {
	return func(c *Client) error {
		if d <= 0 {
			return fmt.Errorf("%w: timeout %v must be positive", ErrInvalidOption, d)
		}
		c.timeout = d
		return nil
	}
}

// Client sends jobs to the workers. It is safe for concurrent use.
type Client struct {
	nc      *nats.Conn
	prefix  string
	timeout time.Duration
	bucket  string
	tracer  trace.Tracer
	clientJS
}

// New returns a client using nc (which the caller keeps and closes).
func New(nc *nats.Conn, opts ...Option) (*Client, error) {
	if nc == nil {
		return nil, fmt.Errorf("%w: nil NATS connection", ErrInvalidOption)
	}
	c := &Client{nc: nc, prefix: sfblocks.DefaultPrefix, timeout: DefaultTimeout, bucket: sfblocks.DefaultResultsBucket, tracer: defaultTracer()}
	for _, opt := range opts {
		if err := opt(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Search runs the Search block. See [Client.Do] for the results.
func (c *Client) Search(ctx context.Context, req *sfblocks.SearchRequest) (*sfblocks.Reply, error) {
	return c.Do(ctx, sfblocks.Search, req)
}

// Insert runs the Insert block. See [Client.Do] for the results.
func (c *Client) Insert(ctx context.Context, req *sfblocks.InsertRequest) (*sfblocks.Reply, error) {
	return c.Do(ctx, sfblocks.Insert, req)
}

// Do sends request (a struct marshalled to JSON, or json.RawMessage / []byte
// sent as is) to block and waits for the reply until ctx's deadline (or the
// client timeout when ctx has none). The request carries ctx's trace
// context (see [WithTracerProvider]). It returns:
//
//   - the reply and nil when the job succeeded (status ok or no_data);
//   - the reply and a *sfblocks.Error built from reply.error when the job
//     failed (errors.Is(err, &sfblocks.Error{Code: ...}) matches its code);
//   - nil and a *sfblocks.Error for transport failures: code
//     SALESFORCE_UNAVAILABLE wrapping [ErrNoWorkers], TIMEOUT wrapping
//     [ErrTimeout] (and ctx's error), INTERNAL wrapping [ErrBadReply] or the
//     NATS error. All but ErrBadReply are retryable.
func (c *Client) Do(ctx context.Context, block sfblocks.Block, request any) (reply *sfblocks.Reply, err error) {
	data, err := encodeRequest(request)
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	subject := sfblocks.Subject(c.prefix, block)
	ctx, span := c.startSend(ctx, subject, block, trace.SpanKindClient, len(data))
	defer func() { endSend(span, reply, err) }()
	req := &nats.Msg{Subject: subject, Data: data}
	if span.SpanContext().IsValid() {
		req.Header = nats.Header{}
		natstrace.Inject(ctx, req.Header)
	}
	msg, err := c.nc.RequestMsgWithContext(ctx, req)
	if err != nil {
		return nil, transportError(subject, err)
	}
	return decodeReply(subject, msg.Data)
}

// encodeRequest returns the JSON of a request: []byte and json.RawMessage
// as is, anything else marshalled.
func encodeRequest(request any) ([]byte, error) {
	switch r := request.(type) {
	case []byte:
		return r, nil
	case json.RawMessage:
		return r, nil
	}
	data, err := json.Marshal(request)
	if err != nil {
		return nil, &sfblocks.Error{Code: sfblocks.CodeInvalidRequest, Message: "request cannot be encoded as JSON: " + err.Error(), Err: err}
	}
	return data, nil
}

// decodeReply turns a reply received from subject into Do's results.
func decodeReply(subject string, data []byte) (*sfblocks.Reply, error) {
	var reply sfblocks.Reply
	if err := json.Unmarshal(data, &reply); err != nil || reply.Status == "" {
		if err == nil {
			err = errors.New("missing status")
		}
		return nil, &sfblocks.Error{Code: sfblocks.CodeInternal, Message: fmt.Sprintf("%v from %s: %v", ErrBadReply, subject, err), Err: fmt.Errorf("%w: %w", ErrBadReply, err)}
	}
	if reply.Status != sfblocks.StatusFailed {
		return &reply, nil
	}
	return &reply, reply.AsError()
}

func transportError(subject string, err error) error {
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return &sfblocks.Error{Code: sfblocks.CodeSalesforceUnavailable, Retryable: true,
			Message: fmt.Sprintf("no sfblocks worker listens on %s; start a worker or check the prefix", subject),
			Err:     fmt.Errorf("%w: %w", ErrNoWorkers, err)}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return &sfblocks.Error{Code: sfblocks.CodeTimeout, Retryable: true,
			Message: fmt.Sprintf("no reply on %s before the deadline; the job may still have run", subject),
			Err:     fmt.Errorf("%w: %w", ErrTimeout, err)}
	case errors.Is(err, context.Canceled):
		return &sfblocks.Error{Code: sfblocks.CodeTimeout, Retryable: true,
			Message: "request cancelled before the reply; the job may still have run", Err: err}
	default:
		return &sfblocks.Error{Code: sfblocks.CodeSalesforceUnavailable, Retryable: true,
			Message: fmt.Sprintf("NATS request on %s failed: %v", subject, err), Err: err}
	}
}
