package client_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/worker/client"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

// A client left on otel's default (non-recording) provider still sends
// its caller's trace context, so a caller that traces gets its jobs
// linked up; a context without a span sends no trace headers at all.
func TestInjectsTheCallersContextWithoutAProvider(t *testing.T) {
	t.Parallel()
	s := workertest.StartNATS(t)
	nc := workertest.Connect(t, s)
	got := make(chan nats.Header, 2)
	sub, err := nc.Subscribe(sfblocks.Subject(sfblocks.DefaultPrefix, sfblocks.Search), func(m *nats.Msg) {
		got <- m.Header
		_ = m.Respond([]byte(`{"id":"x","status":"no_data","count":0}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil { // the server knows the subscription before the client asks
		t.Fatal(err)
	}
	c, err := client.New(workertest.Connect(t, s), client.WithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx, span := tp.Tracer("caller").Start(context.Background(), "scenario")
	defer span.End()

	for _, tt := range []struct {
		name string
		ctx  context.Context
		want string
	}{
		{"caller traces", ctx, span.SpanContext().SpanID().String()},
		{"no span", context.Background(), ""},
	} {
		if _, err := c.Search(tt.ctx, &sfblocks.SearchRequest{Query: "SELECT Id FROM Contact"}); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		h := <-got
		tp := h.Get(sfblocks.HeaderTraceParent)
		switch {
		case tt.want == "" && (tp != "" || len(h) != 0):
			t.Errorf("%s: headers %v, want none", tt.name, h)
		case tt.want != "" && !strings.HasPrefix(tp, "00-"+span.SpanContext().TraceID().String()+"-"+tt.want+"-"):
			t.Errorf("%s: traceparent %q, want the caller's span %s", tt.name, tp, tt.want)
		}
	}
}
