package blocks

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks/salesforce"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

// Inserts coalesced into one Collections call: the call's span is the
// first job's child and links to every other job's span; each other job's
// span links to the first job's.
func TestCoalescedCallLinksToEveryJob(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	s := workertest.StartSim(t, sfsim.Options{})
	c, err := salesforce.New(salesforce.StaticToken(s.IssueToken("").AccessToken, s.InstanceURL()), salesforce.WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	rc := &recordingClient{Client: c, gate: make(chan struct{})}
	ex := newTestExecutor(t, rc, WithCoalescing(1, 0))
	tracer := tp.Tracer("test")

	run := func(i int) (*sfblocks.Reply, trace.SpanContext) {
		ctx, span := tracer.Start(context.Background(), fmt.Sprintf("job %d", i))
		defer span.End()
		payload, _ := json.Marshal(m{"id": fmt.Sprintf("j%d", i), "object": "Contact", "fields": m{"LastName": fmt.Sprintf("Linked %d", i)}})
		return ex.Handle(ctx, sfblocks.Insert, payload), span.SpanContext()
	}
	// A pilot holds the account's one call; three jobs queue behind it and
	// ride the next call together.
	var wg sync.WaitGroup
	wg.Go(func() { run(0) })
	workertest.WaitFor(t, 5*time.Second, "the pilot insert in flight", func() bool { return rc.singleCreates() == 1 })
	const n = 3
	jobs := map[trace.SpanID]bool{}
	var mu sync.Mutex
	for i := 1; i <= n; i++ {
		wg.Go(func() {
			r, sc := run(i)
			if r.Status != sfblocks.StatusOK {
				t.Errorf("job %d: %+v", i, r.Error)
			}
			mu.Lock()
			jobs[sc.SpanID()] = true
			mu.Unlock()
		})
	}
	co := ex.coalescerFor(mustLookup(t, ex))
	workertest.WaitFor(t, 5*time.Second, "the others queued", func() bool {
		co.mu.Lock()
		defer co.mu.Unlock()
		return len(co.queue) == n
	})
	close(rc.gate)
	wg.Wait()

	var call tracetest.SpanStub
	byID := map[trace.SpanID]tracetest.SpanStub{}
	for _, sp := range exp.GetSpans() {
		byID[sp.SpanContext.SpanID()] = sp
		if sp.Name == "POST /composite/sobjects" {
			call = sp
		}
	}
	if !call.SpanContext.IsValid() {
		t.Fatal("no span for the Collections call")
	}
	first := call.Parent.SpanID()
	if !jobs[first] {
		t.Fatalf("the call's parent %s is not one of the batch's jobs", first)
	}
	linked := map[trace.SpanID]bool{}
	for _, l := range call.Links {
		if attrOf(l.Attributes, "sfblocks.link") != linkCoalescedBatch {
			t.Errorf("call link %+v: want kind %s", l, linkCoalescedBatch)
		}
		linked[l.SpanContext.SpanID()] = true
	}
	for id := range jobs {
		job := byID[id]
		if attrOf(job.Attributes, "sfblocks.insert.batch_size") != fmt.Sprint(n) {
			t.Errorf("%s: batch_size %q, want %d", job.Name, attrOf(job.Attributes, "sfblocks.insert.batch_size"), n)
		}
		if id == first {
			continue
		}
		if !linked[id] {
			t.Errorf("the call does not link to %s", job.Name)
		}
		if len(job.Links) != 1 || job.Links[0].SpanContext.SpanID() != first {
			t.Errorf("%s links %+v, want one link to the first job %s", job.Name, job.Links, first)
		}
	}
	if len(call.Links) != n-1 {
		t.Errorf("the call has %d links, want %d", len(call.Links), n-1)
	}
}

func mustLookup(t *testing.T, ex *Executor) Account {
	t.Helper()
	acct, err := ex.accounts.Lookup("")
	if err != nil {
		t.Fatal(err)
	}
	return acct
}

func attrOf(attrs []attribute.KeyValue, key string) string {
	for _, kv := range attrs {
		if string(kv.Key) == key {
			return kv.Value.String()
		}
	}
	return ""
}
