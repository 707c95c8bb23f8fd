package worker

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/worker/internal/natstrace"
)

// Tracing: every job the worker runs is one span, continuing the W3C
// trace context its message carries (traceparent/tracestate headers, see
// natstrace): "process <subject>", kind server for a synchronous request
// (its caller waits for the answer), consumer for a durable delivery (one
// span per delivery, so a job retried three times shows three). The span
// is put in the context the job runs under, so the Salesforce calls and
// token waits below it are its children. A replay carries the replayer's
// context as parent and links to the run it replays
// (sfblocks.HeaderReplayTraceParent); see the README's "Trace context" for why.
//
// With the default provider (otel's global, a no-op unless the program
// installs one) a job pays for a non-recording span (a few hundred
// nanoseconds); attributes are only built for a span that records. With
// a noop.TracerProvider, which `sfblocks serve` passes when no exporter is
// configured, the worker starts no span at all.

// tracerName is the instrumentation scope of the worker's spans.
const tracerName = "github.com/sfblocks/sfblocks/worker"

// WithTracerProvider sets the provider of the worker's job spans. Defaults
// to otel.GetTracerProvider(), which records nothing unless the program
// installed a provider with otel.SetTracerProvider. A
// noop.TracerProvider turns tracing off altogether: no span is started,
// and a dead letter keeps only the trace context its job came with.
// Tests pass an SDK provider with an in-memory exporter.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) error {
		if tp == nil {
			return invalid("tracer provider: nil (omit the option to use otel's global provider)")
		}
		c.tracerProvider = tp
		return nil
	}
}

// tracing is the worker's tracer and its precomputed span names.
type tracing struct {
	// tracer is nil when tracing is off (a noop.TracerProvider).
	tracer trace.Tracer
	// syncNames are the synchronous jobs' span names by block: built
	// once, so the hot path concatenates nothing.
	syncNames map[sfblocks.Block]string
}

func newTracing(cfg config) tracing {
	tp := cfg.tracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	t := tracing{syncNames: map[sfblocks.Block]string{}}
	if _, off := tp.(noop.TracerProvider); !off {
		t.tracer = tp.Tracer(tracerName)
	}
	for _, b := range sfblocks.Blocks() {
		t.syncNames[b] = "process " + sfblocks.Subject(cfg.prefix, b)
	}
	return t
}

// serverOpts start a synchronous job's span; a package-level slice, so
// that a job that started at once allocates no options.
var serverOpts = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}

// startSync starts the span of a synchronous job, from its receipt: the
// time it waited in the backlog is part of it.
func (w *Worker) startSync(j *job) (context.Context, trace.Span) {
	if w.tracing.tracer == nil {
		return w.base, noSpan
	}
	ctx := natstrace.Extract(w.base, nats.Header(j.req.Headers()))
	opts := serverOpts
	if time.Since(j.received) > 100*time.Microsecond {
		// It waited for a slot: the span starts when it arrived.
		opts = []trace.SpanStartOption{serverOpts[0], trace.WithTimestamp(j.received)}
	}
	ctx, span := w.tracing.tracer.Start(ctx, w.tracing.syncNames[j.block], opts...)
	if span.IsRecording() {
		span.SetAttributes(messagingAttrs(j.req.Subject(), w.cfg.queueGroup, len(j.req.Data()))...)
		span.SetAttributes(attribute.String(natstrace.AttrBlock, string(j.block)), attribute.String(natstrace.AttrPath, sfblocks.PathSync))
		if waited := time.Since(j.received); waited > time.Millisecond {
			span.AddEvent("slot taken", trace.WithAttributes(attribute.Int64("sfblocks.queued_ms", waited.Milliseconds())))
		}
	}
	return ctx, span
}

// traceTask notes the planned job on its span, and keeps the span's
// context on the task for its dead letter.
func traceTask(span trace.Span, t *task) {
	t.trace = span.SpanContext()
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(attribute.String(natstrace.AttrJobID, t.identity.ID), attribute.String(natstrace.AttrAccount, t.account))
}

// startDurable starts the span of one delivery of a durable job. A replay
// links to the run it replays.
func (d *durable) startDurable(b sfblocks.Block, msg jetstream.Msg) (context.Context, trace.Span) {
	w := d.w
	if w.tracing.tracer == nil {
		return w.base, noSpan
	}
	h := msg.Headers()
	ctx := natstrace.Extract(w.base, h)
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer)}
	if sc, ok := natstrace.ParseTraceParent(h.Get(sfblocks.HeaderReplayTraceParent)); ok {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc,
			Attributes: []attribute.KeyValue{attribute.String(natstrace.AttrLinkKind, natstrace.LinkReplayOf)}}))
	}
	ctx, span := w.tracing.tracer.Start(ctx, "process "+msg.Subject(), opts...)
	if span.IsRecording() {
		var consumer string
		meta, err := msg.Metadata()
		if err == nil {
			consumer = meta.Consumer
		}
		span.SetAttributes(messagingAttrs(msg.Subject(), consumer, len(msg.Data()))...)
		span.SetAttributes(attribute.String(natstrace.AttrBlock, string(b)), attribute.String(natstrace.AttrPath, sfblocks.PathDurable))
		if err == nil {
			span.SetAttributes(attribute.Int64(natstrace.AttrDelivery, int64(meta.NumDelivered)),
				attribute.Int64("messaging.nats.stream.sequence", int64(meta.Sequence.Stream)))
		}
		if _, of := replays(h); of != 0 {
			span.SetAttributes(attribute.Int64(natstrace.AttrReplayOf, int64(of)))
		}
	}
	return ctx, span
}

// noSpan stands for the span of a job when tracing is off.
var noSpan = trace.SpanFromContext(context.Background())

// messagingAttrs are the OpenTelemetry messaging attributes of a received
// job: where it came from, never what it holds.
func messagingAttrs(subject, group string, size int) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String("messaging.system", natstrace.MessagingSystem),
		attribute.String("messaging.operation.name", "process"),
		attribute.String("messaging.operation.type", "process"),
		attribute.String("messaging.destination.name", subject),
		attribute.String("messaging.consumer.group.name", group),
		attribute.Int("messaging.message.body.size", size),
	}
}

// tracedMsg notes on a durable job's span how its message was settled,
// whichever of the job's paths settled it.
type tracedMsg struct {
	jetstream.Msg
	span trace.Span
}

// traced wraps msg when span records; otherwise msg is returned as it is.
func traced(msg jetstream.Msg, span trace.Span) jetstream.Msg {
	if !span.IsRecording() {
		return msg
	}
	return tracedMsg{Msg: msg, span: span}
}

func (m tracedMsg) settled(action string, delay time.Duration) {
	attrs := []attribute.KeyValue{attribute.String(natstrace.AttrSettle, action)}
	if delay > 0 {
		attrs = append(attrs, attribute.Int64("sfblocks.settle.delay_ms", delay.Milliseconds()))
	}
	m.span.SetAttributes(attrs...)
}

// Ack notes the ack and acks.
func (m tracedMsg) Ack() error { m.settled("ack", 0); return m.Msg.Ack() }

// DoubleAck notes the ack and acks.
func (m tracedMsg) DoubleAck(ctx context.Context) error {
	m.settled("ack", 0)
	return m.Msg.DoubleAck(ctx)
}

// Nak notes the nak and naks.
func (m tracedMsg) Nak() error { m.settled("nak", 0); return m.Msg.Nak() }

// NakWithDelay notes the nak and naks.
func (m tracedMsg) NakWithDelay(d time.Duration) error {
	m.settled("nak", d)
	return m.Msg.NakWithDelay(d)
}

// Term notes the termination and terminates.
func (m tracedMsg) Term() error { m.settled("term", 0); return m.Msg.Term() }

// TermWithReason notes the termination and terminates.
func (m tracedMsg) TermWithReason(reason string) error {
	m.settled("term", 0)
	return m.Msg.TermWithReason(reason)
}

// traceNote sets attributes on span when it records.
func traceNote(span trace.Span, attrs ...attribute.KeyValue) {
	if span.IsRecording() {
		span.SetAttributes(attrs...)
	}
}
