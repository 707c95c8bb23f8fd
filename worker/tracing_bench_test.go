package worker

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/micro"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/worker/internal/natstrace"
)

// fakeReq is the least of a request that startSync reads.
type fakeReq struct{ micro.Request }

func (fakeReq) Headers() micro.Headers { return nil }
func (fakeReq) Subject() string        { return "sfblocks.search" }
func (fakeReq) Data() []byte           { return []byte("{}") }

// BenchmarkSyncSpanNoop is what tracing costs a synchronous job under
// otel's default global provider (records nothing).
func BenchmarkSyncSpanNoop(b *testing.B) {
	w := &Worker{base: context.Background(), tracing: newTracing(defaultConfig())}
	j := &job{block: sfblocks.Search, req: fakeReq{}, received: time.Now()}
	r := &sfblocks.Reply{Status: sfblocks.StatusOK}
	t := &task{}
	b.ReportAllocs()
	for b.Loop() {
		j.received = time.Now()
		_, span := w.startSync(j)
		traceTask(span, t)
		natstrace.RecordReply(span, r)
		span.End()
	}
}

// BenchmarkSyncSpanOff is what it costs with tracing off (a
// noop.TracerProvider, as `sfblocks serve` passes without an exporter).
func BenchmarkSyncSpanOff(b *testing.B) {
	cfg := defaultConfig()
	cfg.tracerProvider = noop.NewTracerProvider()
	w := &Worker{base: context.Background(), tracing: newTracing(cfg)}
	j := &job{block: sfblocks.Search, req: fakeReq{}, received: time.Now()}
	r := &sfblocks.Reply{Status: sfblocks.StatusOK}
	t := &task{}
	b.ReportAllocs()
	for b.Loop() {
		j.received = time.Now()
		_, span := w.startSync(j)
		traceTask(span, t)
		natstrace.RecordReply(span, r)
		span.End()
	}
}
