package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/auth"
	"github.com/sfblocks/sfblocks/blocks"
	"github.com/sfblocks/sfblocks/blocks/salesforce"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
	"github.com/sfblocks/sfblocks/worker"
	"github.com/sfblocks/sfblocks/worker/client"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

// traced is one test's fleet with every part tracing into one in-memory
// exporter: the real worker, executor, REST client and token cache (with
// the fleet's KV store and its lease) against the simulator, and the Go
// client.
type traced struct {
	t      *testing.T
	exp    *tracetest.InMemoryExporter
	tp     *sdktrace.TracerProvider
	sim    *sfsim.Server
	client *client.Client
	cache  *auth.Cache
	// key is the token store's key, which no span may hold either.
	key string
}

func newTraced(t *testing.T) *traced {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ns := workertest.StartNATS(t)
	nc, js := workertest.JetStream(t, ns)
	sim := workertest.StartSim(t, sfsim.Options{})

	cfg := &auth.Config{}
	for _, name := range []string{"a", "b"} {
		cfg.Accounts = append(cfg.Accounts, &auth.Account{Name: name, LoginURL: sim.MyDomainURL(), ClientID: sfsim.DefaultClientID,
			ClientSecret: auth.Secret(sfsim.DefaultClientSecret), Flow: auth.FlowClientCredentials, APIVersion: "66.0", Default: name == "a"})
	}
	cipher, key, err := auth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	store, err := auth.NewKVStore(ctx, js, auth.KVStoreConfig{Cipher: cipher})
	if err != nil {
		t.Fatal(err)
	}
	cache, err := auth.NewCache(cfg, auth.CacheOptions{Store: store, TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	accounts := blocks.StaticAccounts{Default: "a", Clients: map[string]blocks.SalesforceAPI{}}
	for _, a := range cfg.Accounts {
		ts, err := cache.Source(a.Name)
		if err != nil {
			t.Fatal(err)
		}
		c, err := salesforce.New(ts, salesforce.WithTracerProvider(tp), salesforce.WithSpanAttributes(attribute.String("sfblocks.account", a.Name)))
		if err != nil {
			t.Fatal(err)
		}
		accounts.Clients[a.Name] = c
	}
	exec, err := blocks.NewExecutor(accounts, blocks.WithDefaultTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(nc, exec, worker.WithTracerProvider(tp), worker.WithDrainTimeout(5*time.Second),
		worker.WithDurable(worker.DurableConfig{AckWait: 2 * time.Second, FetchWait: 200 * time.Millisecond, MaxAttempts: 2, RetryBackoff: 100 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	cl, err := client.New(workertest.Connect(t, ns), client.WithTracerProvider(tp), client.WithTimeout(15*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return &traced{t: t, exp: exp, tp: tp, sim: sim, client: cl, cache: cache, key: key}
}

// span waits for the ended span named name in trace tid whose parent is
// parent (any parent when parent is invalid).
func (tr *traced) span(name string, tid trace.TraceID, parent trace.SpanID) tracetest.SpanStub {
	tr.t.Helper()
	var found tracetest.SpanStub
	workertest.WaitFor(tr.t, 10*time.Second, fmt.Sprintf("span %q in trace %s under %s", name, tid, parent), func() bool {
		for _, s := range tr.exp.GetSpans() {
			if s.Name == name && s.SpanContext.TraceID() == tid && (!parent.IsValid() || s.Parent.SpanID() == parent) {
				found = s
				return true
			}
		}
		return false
	})
	return found
}

func attrOf(s tracetest.SpanStub, key string) attribute.Value {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

func wantAttr(t *testing.T, s tracetest.SpanStub, key, want string) {
	t.Helper()
	if got := attrOf(s, key).String(); got != want {
		t.Errorf("span %q: %s = %q, want %q", s.Name, key, got, want)
	}
}

// A synchronous job sent with a parent span: the worker's job span is the
// client span's child, and the job's Salesforce call and its token wait
// are the job span's children.
func TestTraceSyncJob(t *testing.T) {
	t.Parallel()
	tr := newTraced(t)
	ctx, root := tr.tp.Tracer("test").Start(context.Background(), "scenario")
	reply, err := tr.client.Search(ctx, &sfblocks.SearchRequest{ID: "sync-1",
		Query: "SELECT Id, Name FROM Contact WHERE Phone = '$(ani)'", Variables: map[string]any{"ani": "+1 415 555 0100"}})
	root.End()
	if err != nil || reply.Status != sfblocks.StatusOK {
		t.Fatalf("search: %+v, %v", reply, err)
	}
	tid := root.SpanContext().TraceID()

	send := tr.span("send sfblocks.search", tid, root.SpanContext().SpanID())
	if send.SpanKind != trace.SpanKindClient {
		t.Errorf("client span kind %v, want client", send.SpanKind)
	}
	job := tr.span("process sfblocks.search", tid, send.SpanContext.SpanID())
	if job.SpanKind != trace.SpanKindServer || !job.Parent.IsRemote() {
		t.Errorf("job span kind %v remote parent %v, want server with a remote parent", job.SpanKind, job.Parent.IsRemote())
	}
	for k, v := range map[string]string{"sfblocks.block": "search", "sfblocks.path": "sync", "sfblocks.job_id": "sync-1",
		"sfblocks.account": "a", "sfblocks.status": "ok", "messaging.system": "nats", "messaging.destination.name": "sfblocks.search"} {
		wantAttr(t, job, k, v)
	}
	call := tr.span("GET /query", tid, job.SpanContext.SpanID())
	if call.SpanKind != trace.SpanKindClient {
		t.Errorf("call span kind %v, want client", call.SpanKind)
	}
	for k, v := range map[string]string{"http.request.method": "GET", "url.template": "/query", "http.response.status_code": "200",
		"sfblocks.account": "a", "salesforce.api_version": "66.0"} {
		wantAttr(t, call, k, v)
	}
	wait := tr.span("sfblocks.token.wait", tid, job.SpanContext.SpanID())
	wantAttr(t, wait, "sfblocks.account", "a")
	fetch := tr.span("sfblocks.token.fetch", tid, wait.SpanContext.SpanID())
	wantAttr(t, fetch, "sfblocks.token.outcome", "refreshed")
	tr.span("sfblocks.token.lease", tid, fetch.SpanContext.SpanID())
	grant := tr.span("POST /services/oauth2/token", tid, fetch.SpanContext.SpanID())
	wantAttr(t, grant, "oauth.grant_type", "client_credentials")
	wantAttr(t, grant, "http.response.status_code", "200")
	if !call.StartTime.After(wait.EndTime) && !call.StartTime.Equal(wait.EndTime) {
		t.Errorf("the call started before its token wait ended")
	}
	tr.noSecrets(t, "+1 415 555 0100", "415 555", "Ada Byron", "SELECT", "q=")
}

// A durable job: the job span (a consumer) is the producer span's child,
// and its Salesforce call and token wait are the job span's children.
func TestTraceDurableJob(t *testing.T) {
	t.Parallel()
	tr := newTraced(t)
	ctx, root := tr.tp.Tracer("test").Start(context.Background(), "scenario")
	reply, err := tr.client.DoDurable(ctx, sfblocks.Insert, &sfblocks.InsertRequest{ID: "durable-1", Account: "b", Object: "Task",
		Fields: map[string]any{"Subject": "Call from $(ani)"}, Variables: map[string]any{"ani": "+1 415 555 0199"}})
	root.End()
	if err != nil || reply.Status != sfblocks.StatusOK {
		t.Fatalf("insert: %+v, %v", reply, err)
	}
	tid := root.SpanContext().TraceID()
	send := tr.span("send sfblocks.jobs.insert", tid, root.SpanContext().SpanID())
	if send.SpanKind != trace.SpanKindProducer {
		t.Errorf("producer span kind %v", send.SpanKind)
	}
	wantAttr(t, send, "sfblocks.job_id", "durable-1")
	job := tr.span("process sfblocks.jobs.insert", tid, send.SpanContext.SpanID())
	if job.SpanKind != trace.SpanKindConsumer {
		t.Errorf("job span kind %v, want consumer", job.SpanKind)
	}
	for k, v := range map[string]string{"sfblocks.block": "insert", "sfblocks.path": "durable", "sfblocks.job_id": "durable-1",
		"sfblocks.account": "b", "sfblocks.status": "ok", "sfblocks.settle": "ack", "sfblocks.delivery": "1", "messaging.consumer.group.name": "insert"} {
		wantAttr(t, job, k, v)
	}
	call := tr.span("POST /sobjects/{object}", tid, job.SpanContext.SpanID())
	wantAttr(t, call, "salesforce.sobject", "Task")
	wantAttr(t, call, "http.response.status_code", "201")
	wait := tr.span("sfblocks.token.wait", tid, job.SpanContext.SpanID())
	wantAttr(t, wait, "sfblocks.account", "b")
	tr.noSecrets(t, "+1 415 555 0199", "Call from")
}

// A durable job that fails for good is dead-lettered with its trace
// context; its replay is the replayer's child and links to the original
// run's job span.
func TestTraceReplayLinksToTheOriginal(t *testing.T) {
	t.Parallel()
	tr := newTraced(t)
	ctx, root := tr.tp.Tracer("test").Start(context.Background(), "scenario")
	_, err := tr.client.DoDurable(ctx, sfblocks.Insert, &sfblocks.InsertRequest{ID: "dl-1", Object: "Contact",
		Fields: map[string]any{"Email": "sentinel.4711@example.com"}})
	root.End()
	if !errors.Is(err, sfblocks.ErrSalesforceError) {
		t.Fatalf("insert without LastName: %v, want SALESFORCE_ERROR", err)
	}
	tid := root.SpanContext().TraceID()
	send := tr.span("send sfblocks.jobs.insert", tid, root.SpanContext().SpanID())
	orig := tr.span("process sfblocks.jobs.insert", tid, send.SpanContext.SpanID())
	wantAttr(t, orig, "sfblocks.dead_letter.reason", sfblocks.ReasonPermanent)
	wantAttr(t, orig, "sfblocks.error.code", "SALESFORCE_ERROR")
	wantAttr(t, orig, "salesforce.error_code", "REQUIRED_FIELD_MISSING")
	wantAttr(t, orig, "sfblocks.settle", "term")
	call := tr.span("POST /sobjects/{object}", tid, orig.SpanContext.SpanID())
	wantAttr(t, call, "salesforce.error_code", "REQUIRED_FIELD_MISSING")
	wantAttr(t, call, "http.response.status_code", "400")

	// The dead letter keeps the context the job came with, and names the
	// failed run's span.
	var dl *sfblocks.DeadLetter
	workertest.WaitFor(t, 10*time.Second, "the dead letter", func() bool {
		dl, err = tr.client.GetDeadLetter(context.Background(), "dl-1")
		return err == nil
	})
	if tp := strings.Join(dl.Headers[sfblocks.HeaderTraceParent], ""); !strings.Contains(tp, send.SpanContext.SpanID().String()) {
		t.Errorf("dead letter headers' traceparent %q, want the producer span %s", tp, send.SpanContext.SpanID())
	}
	if want := "00-" + tid.String() + "-" + orig.SpanContext.SpanID().String() + "-01"; dl.TraceParent != want {
		t.Errorf("dead letter traceparent %q, want %q", dl.TraceParent, want)
	}

	// The operator replays it, corrected, from a trace of its own.
	octx, op := tr.tp.Tracer("test").Start(context.Background(), "operator")
	sum, err := tr.client.ReplayDeadLetters(octx, client.DLQFilter{Refs: []string{"dl-1"}},
		client.ReplayOptions{Payload: []byte(`{"object":"Contact","fields":{"LastName":"Sentinel","Email":"sentinel.4711@example.com"}}`), Timeout: 10 * time.Second})
	op.End()
	if err != nil || sum.Succeeded != 1 {
		t.Fatalf("replay: %+v, %v", sum, err)
	}
	otid := op.SpanContext().TraceID()
	if otid == tid {
		t.Fatal("the replay ran in the original's trace")
	}
	replay := tr.span("sfblocks.dlq.replay", otid, op.SpanContext().SpanID())
	rsend := tr.span("send sfblocks.jobs.insert", otid, replay.SpanContext.SpanID())
	rjob := tr.span("process sfblocks.jobs.insert", otid, rsend.SpanContext.SpanID())
	for _, s := range []tracetest.SpanStub{rsend, rjob} {
		if len(s.Links) != 1 || !s.Links[0].SpanContext.Equal(orig.SpanContext.WithRemote(true)) && !s.Links[0].SpanContext.Equal(orig.SpanContext) {
			t.Errorf("span %q links %+v, want one link to the original run %s", s.Name, s.Links, orig.SpanContext.SpanID())
			continue
		}
		if got := s.Links[0].SpanContext.TraceID(); got != tid {
			t.Errorf("span %q links to trace %s, want %s", s.Name, got, tid)
		}
	}
	wantAttr(t, rjob, "sfblocks.status", "ok")
	wantAttr(t, rjob, "sfblocks.replay_of", fmt.Sprint(dl.Seq))
	tr.span("POST /sobjects/{object}", otid, rjob.SpanContext.SpanID())
	tr.noSecrets(t, "sentinel.4711", "Sentinel")
}

// noSecrets scans every exported span (names, attributes, events, links,
// status, resource) for the simulator's client secret, the access tokens,
// the token store's key and the jobs' values.
func (tr *traced) noSecrets(t *testing.T, values ...string) {
	t.Helper()
	var tokens []string
	for _, name := range []string{"a", "b"} {
		ts, _ := tr.cache.Source(name)
		if tok, err := ts.Token(context.Background()); err == nil {
			tokens = append(tokens, tok.AccessToken)
		}
	}
	if len(tokens) == 0 {
		t.Fatal("no access token to look for")
	}
	stubs := tr.exp.GetSpans()
	data, err := json.Marshal(stubs)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for _, s := range stubs {
		text += s.Name + s.Status.Description
		for _, kv := range s.Attributes {
			text += string(kv.Key) + "=" + kv.Value.String() + "\n"
		}
		for _, e := range s.Events {
			text += e.Name
			for _, kv := range e.Attributes {
				text += kv.Value.String()
			}
		}
	}
	for _, v := range append(append([]string{sfsim.DefaultClientSecret, tr.key, "Bearer"}, tokens...), values...) {
		if v != "" && strings.Contains(text, v) {
			t.Errorf("a secret or record value (%q) reached a span", v)
		}
	}
	t.Logf("scanned %d spans", len(stubs))
}

// A failed synchronous Insert is dead-lettered with its job span's
// context; its replay's job span links to that span.
func TestTraceSyncDeadLetterReplay(t *testing.T) {
	t.Parallel()
	tr := newTraced(t)
	ctx, root := tr.tp.Tracer("test").Start(context.Background(), "scenario")
	_, err := tr.client.Insert(ctx, &sfblocks.InsertRequest{ID: "sync-dl-1", Object: "Contact", Fields: map[string]any{"FirstName": "NoLast"}})
	root.End()
	if !errors.Is(err, sfblocks.ErrSalesforceError) {
		t.Fatalf("insert without LastName: %v, want SALESFORCE_ERROR", err)
	}
	tid := root.SpanContext().TraceID()
	send := tr.span("send sfblocks.insert", tid, root.SpanContext().SpanID())
	job := tr.span("process sfblocks.insert", tid, send.SpanContext.SpanID())
	var dl *sfblocks.DeadLetter
	workertest.WaitFor(t, 10*time.Second, "the dead letter", func() bool {
		dl, err = tr.client.GetDeadLetter(context.Background(), "sync-dl-1")
		return err == nil
	})
	if want := "00-" + tid.String() + "-" + job.SpanContext.SpanID().String() + "-01"; dl.TraceParent != want || dl.Path != sfblocks.PathSync {
		t.Errorf("dead letter path %q traceparent %q, want sync and %q", dl.Path, dl.TraceParent, want)
	}
	sum, err := tr.client.ReplayDeadLetters(context.Background(), client.DLQFilter{Refs: []string{"sync-dl-1"}},
		client.ReplayOptions{Payload: []byte(`{"object":"Contact","fields":{"FirstName":"NoLast","LastName":"Fixed"}}`), Timeout: 10 * time.Second})
	if err != nil || sum.Succeeded != 1 {
		t.Fatalf("replay: %+v, %v", sum, err)
	}
	var rjob tracetest.SpanStub
	workertest.WaitFor(t, 10*time.Second, "the replay's job span", func() bool {
		for _, s := range tr.exp.GetSpans() {
			if s.Name == "process sfblocks.jobs.insert" && len(s.Links) == 1 {
				rjob = s
				return true
			}
		}
		return false
	})
	if l := rjob.Links[0].SpanContext; l.TraceID() != tid || l.SpanID() != job.SpanContext.SpanID() {
		t.Errorf("the replay links to %s/%s, want the synchronous run %s/%s", l.TraceID(), l.SpanID(), tid, job.SpanContext.SpanID())
	}
	if rjob.SpanContext.TraceID() == tid {
		t.Error("the replay ran in the original's trace")
	}
}
