package client

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/worker/internal/natstrace"
)

// The client carries the trace context of the ctx it is given to the
// workers: each job message gets the W3C traceparent and tracestate
// headers of a span the client starts for it, "send <subject>" (kind
// client for [Client.Do], which waits for the answer; producer for durable
// jobs and replays), so the worker's job span is that span's child. With
// otel's default global provider the client starts no span of its own and
// injects the caller's context as it is: a caller that traces still gets
// its job linked up.

// tracerName is the instrumentation scope of the client's spans.
const tracerName = "github.com/sfblocks/sfblocks/worker/client"

// WithTracerProvider sets the provider of the client's spans. Defaults to
// otel.GetTracerProvider(), which records nothing unless the program
// installed a provider; the caller's trace context is injected either way.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *Client) error {
		if tp == nil {
			return fmt.Errorf("%w: nil tracer provider (omit the option to use otel's global provider)", ErrInvalidOption)
		}
		c.tracer = tp.Tracer(tracerName)
		return nil
	}
}

func defaultTracer() trace.Tracer { return otel.GetTracerProvider().Tracer(tracerName) }

// startSend starts the span of one job sent to subject.
func (c *Client) startSend(ctx context.Context, subject string, block sfblocks.Block, kind trace.SpanKind, size int, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	ctx, span := c.tracer.Start(ctx, "send "+subject, append(opts, trace.WithSpanKind(kind))...)
	if span.IsRecording() {
		span.SetAttributes(
			attribute.String("messaging.system", natstrace.MessagingSystem),
			attribute.String("messaging.operation.name", "send"),
			attribute.String("messaging.operation.type", "send"),
			attribute.String("messaging.destination.name", subject),
			attribute.Int("messaging.message.body.size", size),
			attribute.String(natstrace.AttrBlock, string(block)))
	}
	return ctx, span
}

// endSend records a job's outcome on its span: the reply's, or the code of
// the transport failure (never its message).
func endSend(span trace.Span, reply *sfblocks.Reply, err error) {
	defer span.End()
	if !span.IsRecording() {
		return
	}
	if reply != nil {
		natstrace.RecordReply(span, reply)
		return
	}
	var se *sfblocks.Error
	if errors.As(err, &se) {
		span.SetAttributes(attribute.String(natstrace.AttrErrorCode, string(se.Code)))
		span.SetStatus(codes.Error, string(se.Code))
	} else if err != nil {
		span.SetStatus(codes.Error, string(sfblocks.CodeInternal))
	}
}
