// Package natstrace carries W3C trace context (traceparent, tracestate)
// in NATS message headers, for the worker and its Go client: the one place
// both read and write it, so they cannot drift apart.
//
// The propagator is fixed to W3C Trace Context rather than taken from
// otel.GetTextMapPropagator: the headers are part of the wire contract
// ([sfblocks.HeaderTraceParent]), and the global propagator is a no-op
// until a program sets one, which would silently drop every caller's
// context.
package natstrace

import (
	"context"
	"strings"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/sfblocks/sfblocks"
)

// Propagator reads and writes the W3C Trace Context headers.
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// Header adapts a nats.Header to [propagation.TextMapCarrier]. Set needs a
// non-nil map.
type Header nats.Header

var _ propagation.TextMapCarrier = Header(nil)

// Get returns the first value of key. NATS headers are case-sensitive;
// W3C names are lower case, but a runtime that canonicalises them
// ("Traceparent", as HTTP libraries do) is still understood.
func (h Header) Get(key string) string {
	if len(h) == 0 {
		return ""
	}
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	for k, v := range h {
		if len(v) > 0 && strings.EqualFold(k, key) {
			return v[0]
		}
	}
	return ""
}

// Set replaces key's values with value.
func (h Header) Set(key, value string) { h[key] = []string{value} }

// Keys lists the header names.
func (h Header) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}

// Extract returns ctx carrying the remote span context of h, or ctx as it
// is when h has none (or an invalid one).
func Extract(ctx context.Context, h nats.Header) context.Context {
	if len(h) == 0 {
		return ctx // the common case costs no propagator call
	}
	return Propagator.Extract(ctx, Header(h))
}

// Inject writes ctx's span context into h, replacing any trace context h
// already had; it writes nothing when ctx has no valid span context.
func Inject(ctx context.Context, h nats.Header) {
	delete(h, sfblocks.HeaderTraceParent)
	delete(h, sfblocks.HeaderTraceState)
	Propagator.Inject(ctx, Header(h))
}

// TraceParent formats sc as a W3C traceparent value, "" when sc is not
// valid.
func TraceParent(sc trace.SpanContext) string {
	if !sc.IsValid() {
		return ""
	}
	m := propagation.MapCarrier{}
	Propagator.Inject(trace.ContextWithSpanContext(context.Background(), sc), m)
	return m.Get(sfblocks.HeaderTraceParent)
}

// ParseTraceParent reads a W3C traceparent value; ok is false when it is
// empty or malformed.
func ParseTraceParent(tp string) (sc trace.SpanContext, ok bool) {
	if tp == "" {
		return trace.SpanContext{}, false
	}
	ctx := Propagator.Extract(context.Background(), propagation.MapCarrier{sfblocks.HeaderTraceParent: tp})
	sc = trace.SpanContextFromContext(ctx)
	return sc, sc.IsValid()
}

// Link is the span context a replay of dl links to: the dead letter's own
// TraceParent (the failed run's job span), else the traceparent the job
// arrived with. ok is false when the dead letter carries neither.
func Link(dl *sfblocks.DeadLetter) (trace.SpanContext, bool) {
	if sc, ok := ParseTraceParent(dl.TraceParent); ok {
		return sc, true
	}
	return ParseTraceParent(Header(dl.Headers).Get(sfblocks.HeaderTraceParent))
}

// Attribute keys shared by the worker's and the client's spans. They name
// jobs, never their contents: no record value, statement or secret is ever
// an attribute.
const (
	AttrBlock       = "sfblocks.block"
	AttrPath        = "sfblocks.path"
	AttrAccount     = "sfblocks.account"
	AttrJobID       = "sfblocks.job_id"
	AttrAttempt     = "sfblocks.attempt"
	AttrStatus      = "sfblocks.status"
	AttrErrorCode   = "sfblocks.error.code"
	AttrSFCode      = "salesforce.error_code"
	AttrRetryable   = "sfblocks.error.retryable"
	AttrReplayOf    = "sfblocks.replay_of"
	AttrDeadLetter  = "sfblocks.dead_letter.reason"
	AttrSettle      = "sfblocks.settle"
	AttrParked      = "sfblocks.parked"
	AttrDelivery    = "sfblocks.delivery"
	AttrLinkKind    = "sfblocks.link"
	LinkReplayOf    = "replay_of"
	MessagingSystem = "nats"
)

// RecordReply notes reply's outcome on span: its status and, for a
// failure, its codes, with the span's status Error described by the code
// alone. The message is never recorded: it may quote Salesforce's, which
// may quote record values. A span that is not recording costs nothing.
func RecordReply(span trace.Span, r *sfblocks.Reply) {
	if r == nil || !span.IsRecording() {
		return
	}
	attrs := []attribute.KeyValue{attribute.String(AttrStatus, string(r.Status))}
	if r.ID != "" {
		attrs = append(attrs, attribute.String(AttrJobID, r.ID))
	}
	if r.Account != "" {
		attrs = append(attrs, attribute.String(AttrAccount, r.Account))
	}
	if r.Attempt > 0 {
		attrs = append(attrs, attribute.Int(AttrAttempt, r.Attempt))
	}
	if r.Status == sfblocks.StatusFailed && r.Error != nil {
		attrs = append(attrs, attribute.String(AttrErrorCode, string(r.Error.Code)), attribute.Bool(AttrRetryable, r.Error.Retryable))
		if r.Error.SalesforceCode != "" {
			attrs = append(attrs, attribute.String(AttrSFCode, r.Error.SalesforceCode))
		}
		span.SetStatus(codes.Error, string(r.Error.Code))
	}
	span.SetAttributes(attrs...)
}
