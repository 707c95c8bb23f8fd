package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/rs/zerolog"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

func TestConcurrentJobs(t *testing.T) {
	t.Parallel()
	s := workertest.StartNATS(t)
	const n = 20
	f := newFake(true)
	startWorker(t, workertest.Connect(t, s), f, WithMaxInFlight(64))
	r := newReplies(t, workertest.Connect(t, s))
	for i := 0; i < n; i++ {
		r.send(t, "sfblocks.search", fmt.Sprintf("job-%d", i))
	}
	// All n jobs run at once: a one-at-a-time worker would never get here.
	f.waitEntered(t, n)
	close(f.release)
	seen := map[string]int{}
	for i := 0; i < n; i++ {
		msg, rep := r.next(t)
		seen[rep.ID]++
		if msg.Subject != "reply."+rep.ID || rep.Status != sfblocks.StatusOK || rep.Attempt != 1 {
			t.Errorf("reply on %s = %+v, want ok with attempt 1 echoing the id", msg.Subject, rep)
		}
	}
	if len(seen) != n {
		t.Errorf("got replies for %d distinct jobs, want %d", len(seen), n)
	}
	if got := f.maxConcurrent(); got != n {
		t.Errorf("max concurrent = %d, want %d", got, n)
	}
	r.none(t)
}

func TestInFlightLimit(t *testing.T) {
	t.Parallel()
	s := workertest.StartNATS(t)
	const limit, n = 3, 12
	f := newFake(true)
	w := startWorker(t, workertest.Connect(t, s), f, WithMaxInFlight(limit))
	r := newReplies(t, workertest.Connect(t, s))
	for i := 0; i < n; i++ {
		r.send(t, "sfblocks.insert", fmt.Sprintf("j%d", i))
	}
	f.waitEntered(t, limit)
	if got := w.InFlight(); got != limit {
		t.Errorf("in flight = %d, want %d", got, limit)
	}
	close(f.release)
	for i := 0; i < n; i++ {
		r.next(t)
	}
	r.none(t)
	if got := f.maxConcurrent(); got != limit {
		t.Errorf("max concurrent = %d, want exactly the limit %d", got, limit)
	}
	if got := f.calls.Load(); got != n {
		t.Errorf("handler calls = %d, want %d", got, n)
	}
}

func TestQueueGroupSharesJobs(t *testing.T) {
	t.Parallel()
	s := workertest.StartNATS(t)
	const workers, n = 3, 60
	fakes := make([]*fakeHandler, workers)
	for i := range fakes {
		fakes[i] = newFake(false)
		fakes[i].tag = fmt.Sprint("w", i)
		startWorker(t, workertest.Connect(t, s), fakes[i]) // nothing configured but the URL
	}
	r := newReplies(t, workertest.Connect(t, s))
	for i := 0; i < n; i++ {
		r.send(t, "sfblocks.search", fmt.Sprint("q", i))
	}
	perWorker := map[string]int{}
	seen := map[string]bool{}
	for i := 0; i < n; i++ {
		_, rep := r.next(t)
		if seen[rep.ID] {
			t.Errorf("job %s answered twice", rep.ID)
		}
		seen[rep.ID] = true
		perWorker[rep.Account]++
	}
	r.none(t)
	var total int64
	for i, f := range fakes {
		total += f.calls.Load()
		if perWorker[f.tag] == 0 {
			t.Errorf("worker %d got no job: %v", i, perWorker)
		}
	}
	if total != n || len(seen) != n {
		t.Errorf("handled %d, answered %d distinct, want %d each", total, len(seen), n)
	}
}

func TestDrainFinishesJobsInFlight(t *testing.T) {
	t.Parallel()
	s := workertest.StartNATS(t)
	held := newFake(true)
	a := startWorker(t, workertest.Connect(t, s), held, WithMaxInFlight(2))
	other := newFake(false)
	other.tag = "b"
	startWorker(t, workertest.Connect(t, s), other)

	r := newReplies(t, workertest.Connect(t, s))
	// Aim at a only: b is not subscribed yet? It is, so send until a holds
	// two jobs and count what b answered meanwhile.
	sent := 0
	for a.InFlight() < 2 || len(held.entered) < 2 {
		r.send(t, "sfblocks.search", fmt.Sprint("d", sent))
		sent++
		if sent > 200 {
			t.Fatal("worker a never received two jobs")
		}
	}
	stopped := make(chan error, 1)
	go func() { stopped <- a.Stop(context.Background()) }()
	workertest.WaitFor(t, 10*time.Second, "Ready to report draining", func() bool { return errors.Is(a.Ready(), ErrDraining) })

	// New jobs while a drains: they go to b (or wait in a's queue), and all
	// are answered.
	for i := 0; i < 10; i++ {
		r.send(t, "sfblocks.search", fmt.Sprint("n", i))
		sent++
	}
	close(held.release)
	if err := <-stopped; err != nil {
		t.Fatalf("Stop = %v, want a clean drain", err)
	}
	seen := map[string]int{}
	for i := 0; i < sent; i++ {
		_, rep := r.next(t)
		seen[rep.ID]++
		if rep.Status != sfblocks.StatusOK {
			t.Errorf("job %s: status %s, want ok (%+v)", rep.ID, rep.Status, rep.Error)
		}
	}
	r.none(t)
	for id, c := range seen {
		if c != 1 {
			t.Errorf("job %s answered %d times", id, c)
		}
	}
	if len(seen) != sent {
		t.Errorf("%d distinct replies, want %d", len(seen), sent)
	}
	// After the drain every job goes to b.
	before := held.calls.Load()
	for i := 0; i < 10; i++ {
		r.send(t, "sfblocks.insert", fmt.Sprint("after", i))
	}
	for i := 0; i < 10; i++ {
		if _, rep := r.next(t); rep.Account != "b" {
			t.Errorf("job %s after drain handled by %q, want b", rep.ID, rep.Account)
		}
	}
	if held.calls.Load() != before {
		t.Error("the drained worker still took jobs")
	}
}

func TestDrainTimeoutAnswersRemainingJobs(t *testing.T) {
	t.Parallel()
	s := workertest.StartNATS(t)
	f := newFake(true)
	f.ignore = true // a stuck job: ignores cancellation
	reg := newTestMetrics(t)
	w := startWorker(t, workertest.Connect(t, s), f, WithMaxInFlight(1), WithDrainTimeout(200*time.Millisecond), WithMetrics(reg),
		func(c *config) error { c.abortGrace = 100 * time.Millisecond; return nil })
	r := newReplies(t, workertest.Connect(t, s))
	r.send(t, "sfblocks.insert", "running")
	f.waitEntered(t, 1)
	r.send(t, "sfblocks.insert", "queued-1")
	r.send(t, "sfblocks.insert", "queued-2")

	err := w.Stop(context.Background())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop = %v, want the drain timeout", err)
	}
	want := map[string]sfblocks.Code{
		"running":  sfblocks.CodeTimeout,
		"queued-1": sfblocks.CodeSalesforceUnavailable,
		"queued-2": sfblocks.CodeSalesforceUnavailable,
	}
	for range want {
		msg, rep := r.next(t)
		code, ok := want[rep.ID]
		if !ok {
			t.Fatalf("unexpected reply %+v", rep)
		}
		if rep.Status != sfblocks.StatusFailed || rep.Error == nil || rep.Error.Code != code || !rep.Error.Retryable {
			t.Errorf("job %s: reply %+v, want retryable %s", rep.ID, rep, code)
		}
		if got, wantHdr := msg.Header.Get(micro.ErrorCodeHeader), fmt.Sprint(code.HTTPStatus()); got != wantHdr {
			t.Errorf("job %s: error code header %q, want %q", rep.ID, got, wantHdr)
		}
	}
	if calls := f.calls.Load(); calls != 1 {
		t.Errorf("handler ran %d jobs, want only the first", calls)
	}
	// The stuck job finishing now must not answer a second time.
	close(f.release)
	workertest.WaitFor(t, 10*time.Second, "the late reply to be counted", func() bool { return counterValue(t, reg.LateReplies) == 1 })
	r.none(t)
}

func TestStopBeforeStartAndTwice(t *testing.T) {
	t.Parallel()
	s := workertest.StartNATS(t)
	w, err := New(workertest.Connect(t, s), newFake(false))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Ready(); !errors.Is(err, ErrNotStarted) {
		t.Errorf("Ready before Start = %v", err)
	}
	if err := w.Stop(context.Background()); err != nil {
		t.Errorf("Stop before Start = %v", err)
	}
	if err := w.Start(context.Background()); !errors.Is(err, ErrAlreadyStarted) {
		t.Errorf("Start after Stop = %v, want ErrAlreadyStarted", err)
	}

	w2 := startWorker(t, workertest.Connect(t, s), newFake(false))
	if err := w2.Ready(); err != nil {
		t.Errorf("Ready = %v", err)
	}
	for i := 0; i < 2; i++ {
		if err := w2.Stop(context.Background()); err != nil {
			t.Errorf("Stop #%d = %v", i+1, err)
		}
	}
	if err := w2.Ready(); !errors.Is(err, ErrDraining) {
		t.Errorf("Ready after Stop = %v", err)
	}
}

func TestRunDrainsOnCancel(t *testing.T) {
	t.Parallel()
	s := workertest.StartNATS(t)
	f := newFake(true)
	w, err := New(workertest.Connect(t, s), f, WithReplySubjects("reply.>"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	workertest.WaitFor(t, 10*time.Second, "the worker to be ready", func() bool { return w.Ready() == nil })
	r := newReplies(t, workertest.Connect(t, s))
	r.send(t, "sfblocks.search", "in-flight")
	f.waitEntered(t, 1)
	cancel()
	workertest.WaitFor(t, 10*time.Second, "Ready to report draining", func() bool { return errors.Is(w.Ready(), ErrDraining) })
	close(f.release)
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if _, rep := r.next(t); rep.ID != "in-flight" || rep.Status != sfblocks.StatusOK {
		t.Errorf("reply %+v", rep)
	}
}

func TestRunReturnsWhenConnectionCloses(t *testing.T) {
	t.Parallel()
	s := workertest.StartNATS(t)
	nc := workertest.Connect(t, s)
	w, err := New(nc, newFake(false))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(context.Background()) }()
	workertest.WaitFor(t, 10*time.Second, "the worker to be ready", func() bool { return w.Ready() == nil })
	nc.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrServiceStopped) {
			t.Errorf("Run = %v, want ErrServiceStopped", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the connection closed")
	}
}

func TestMicroDiscovery(t *testing.T) {
	t.Parallel()
	s := workertest.StartNATS(t)
	startWorker(t, workertest.Connect(t, s), newFake(false), WithVersion("v1.2.3"))
	nc := workertest.Connect(t, s)

	var ping micro.Ping
	request(t, nc, "$SRV.PING.sfblocks", &ping)
	if ping.Name != "sfblocks" || ping.Version != "1.2.3" || ping.Type != micro.PingResponseType {
		t.Errorf("PING = %+v", ping)
	}
	var info micro.Info
	request(t, nc, "$SRV.INFO.sfblocks", &info)
	subjects := map[string]string{}
	for _, e := range info.Endpoints {
		subjects[e.Subject] = e.QueueGroup
	}
	for _, want := range []string{"sfblocks.search", "sfblocks.insert"} {
		if qg, ok := subjects[want]; !ok || qg != "sfblocks" {
			t.Errorf("INFO endpoints %v: want %s in queue group sfblocks", subjects, want)
		}
	}

	r := newReplies(t, nc)
	r.send(t, "sfblocks.search", "s1")
	r.next(t)
	var stats micro.Stats
	request(t, nc, "$SRV.STATS.sfblocks", &stats)
	for _, e := range stats.Endpoints {
		if e.Subject != "sfblocks.search" {
			continue
		}
		var d EndpointData
		if err := json.Unmarshal(e.Data, &d); err != nil {
			t.Fatalf("stats data %s: %v", e.Data, err)
		}
		if e.NumRequests != 1 || d.OK != 1 || d.Failed != 0 {
			t.Errorf("search stats = %+v, data %+v; want 1 request, 1 ok", e, d)
		}
		if d.JobTime <= 0 || d.AverageJobTime != d.JobTime {
			t.Errorf("search stats data %+v: want the one job's time in job_time and average_job_time", d)
		}
		return
	}
	t.Errorf("no search endpoint in STATS %+v", stats)
}

func TestFailedReplyHeaders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		code       sfblocks.Code
		message    string
		wantStatus string
		wantDesc   string
	}{
		{"invalid request", sfblocks.CodeInvalidRequest, "query: required", "400", "INVALID_REQUEST: query: required"},
		{"rate limited", sfblocks.CodeRateLimited, "slow down", "429", "RATE_LIMITED: slow down"},
		{"unavailable", sfblocks.CodeSalesforceUnavailable, "circuit open", "503", "SALESFORCE_UNAVAILABLE: circuit open"},
		{"timeout", sfblocks.CodeTimeout, "deadline", "504", "TIMEOUT: deadline"},
		{"multi-line message", sfblocks.CodeSalesforceError, "MALFORMED_QUERY\nERROR at Row:1", "502", "SALESFORCE_ERROR: MALFORMED_QUERY ERROR at Row:1"},
	}
	s := workertest.StartNATS(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(false)
			f.response = func(id string) *sfblocks.Reply {
				return blocks.FailureReply(id, &sfblocks.Error{Code: tc.code, Message: tc.message})
			}
			prefix := strings.ReplaceAll(tc.name, " ", "_")
			startWorker(t, workertest.Connect(t, s), f, WithPrefix(prefix), WithServiceName(prefix))
			r := newReplies(t, workertest.Connect(t, s))
			r.send(t, prefix+".search", "f1")
			msg, rep := r.next(t)
			if got := msg.Header.Get(micro.ErrorCodeHeader); got != tc.wantStatus {
				t.Errorf("%s = %q, want %q", micro.ErrorCodeHeader, got, tc.wantStatus)
			}
			if got := msg.Header.Get(micro.ErrorHeader); got != tc.wantDesc {
				t.Errorf("%s = %q, want %q", micro.ErrorHeader, got, tc.wantDesc)
			}
			if rep.ID != "f1" || rep.Status != sfblocks.StatusFailed || rep.Error == nil || rep.Error.Code != tc.code || rep.Attempt != 1 {
				t.Errorf("body = %+v", rep)
			}
		})
	}
}

func TestOKReplyHasNoErrorHeaders(t *testing.T) {
	t.Parallel()
	s := workertest.StartNATS(t)
	startWorker(t, workertest.Connect(t, s), newFake(false))
	r := newReplies(t, workertest.Connect(t, s))
	r.send(t, "sfblocks.search", "ok1")
	msg, _ := r.next(t)
	if msg.Header.Get(micro.ErrorCodeHeader) != "" || msg.Header.Get(micro.ErrorHeader) != "" {
		t.Errorf("ok reply has error headers %v", msg.Header)
	}
}

func TestHandlerPanicAndNilReply(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		h    HandlerFunc
	}{
		{"panic", func(context.Context, sfblocks.Block, []byte) *sfblocks.Reply { panic("boom") }},
		{"nil reply", func(context.Context, sfblocks.Block, []byte) *sfblocks.Reply { return nil }},
	}
	s := workertest.StartNATS(t)
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prefix := fmt.Sprint("p", i)
			startWorker(t, workertest.Connect(t, s), tc.h, WithPrefix(prefix), WithServiceName(prefix))
			r := newReplies(t, workertest.Connect(t, s))
			r.send(t, prefix+".insert", "x1")
			_, rep := r.next(t)
			if rep.ID != "x1" || rep.Error == nil || rep.Error.Code != sfblocks.CodeInternal {
				t.Errorf("reply = %+v, want INTERNAL for x1", rep)
			}
		})
	}
}

func TestReplyTooLarge(t *testing.T) {
	t.Parallel()
	s := workertest.StartNATS(t)
	f := newFake(false)
	f.response = func(id string) *sfblocks.Reply {
		n := 1
		return &sfblocks.Reply{ID: id, Status: sfblocks.StatusOK, Count: &n,
			Records: []map[string]any{{"Description": strings.Repeat("x", 2<<20)}}}
	}
	startWorker(t, workertest.Connect(t, s), f)
	r := newReplies(t, workertest.Connect(t, s))
	r.send(t, "sfblocks.search", "big")
	_, rep := r.next(t)
	if rep.ID != "big" || rep.Error == nil || rep.Error.Code != sfblocks.CodeInvalidRequest || !strings.Contains(rep.Error.Message, "max payload") {
		t.Errorf("reply = %+v, want INVALID_REQUEST about max payload", rep)
	}
}

func TestJobLogging(t *testing.T) {
	t.Parallel()
	s := workertest.StartNATS(t)
	var buf workertest.LogBuffer
	f := newFake(false)
	f.response = func(id string) *sfblocks.Reply {
		n := 1
		return &sfblocks.Reply{ID: id, Account: "acme", Status: sfblocks.StatusOK, Count: &n,
			Records: []map[string]any{{"Phone": "+33 6 SECRET"}}, First: map[string]any{"Phone": "+33 6 SECRET"}}
	}
	startWorker(t, workertest.Connect(t, s), f, WithLogger(zerolog.New(&buf).Level(zerolog.InfoLevel)))
	r := newReplies(t, workertest.Connect(t, s))
	r.send(t, "sfblocks.search", "log1")
	r.next(t)
	workertest.WaitFor(t, 10*time.Second, "log1's log event", func() bool { return strings.Contains(buf.String(), `"job_id":"log1"`) })
	var ev map[string]any
	for _, line := range strings.Split(buf.String(), "\n") {
		if strings.Contains(line, `"job_id":"log1"`) {
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatal(err)
			}
		}
	}
	for k, want := range map[string]any{"block": "search", "account": "acme", "status": "ok", "attempt": float64(1), "level": "info"} {
		if ev[k] != want {
			t.Errorf("log field %s = %v, want %v (event %v)", k, ev[k], want, ev)
		}
	}
	if _, ok := ev["duration_ms"]; !ok {
		t.Errorf("log event lacks duration_ms: %v", ev)
	}
	if strings.Contains(buf.String(), "SECRET") {
		t.Errorf("a record value reached the info log: %s", buf.String())
	}
}

func TestNewValidation(t *testing.T) {
	t.Parallel()
	s := workertest.StartNATS(t)
	nc := workertest.Connect(t, s)
	tests := []struct {
		name string
		opt  Option
	}{
		{"prefix wildcard", WithPrefix("a.*")},
		{"prefix empty", WithPrefix("")},
		{"prefix space", WithPrefix("a b")},
		{"service name dot", WithServiceName("a.b")},
		{"version", WithVersion("latest")},
		{"queue group", WithQueueGroup("q>")},
		{"in flight zero", WithMaxInFlight(0)},
		{"in flight huge", WithMaxInFlight(1 << 20)},
		{"pending", WithPendingLimits(0, 10)},
		{"backlog negative", WithMaxBacklog(-1)},
		{"backlog huge", WithMaxBacklog(1 << 21)},
		{"drain", WithDrainTimeout(0)},
		{"metrics", WithMetrics(nil)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(nc, newFake(false), tc.opt); !errors.Is(err, ErrInvalidOption) {
				t.Errorf("New = %v, want ErrInvalidOption", err)
			}
		})
	}
	if _, err := New(nil, newFake(false)); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("nil conn: %v", err)
	}
	if _, err := New(nc, nil); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("nil handler: %v", err)
	}
	if _, err := New(nc, newFake(false), WithPrefix("acme.sfblocks"), WithVersion("2.0.0-rc.1"), WithQueueGroup("g1"),
		WithMaxInFlight(1), WithMaxBacklog(0), WithPendingLimits(10, 1<<20), WithDrainTimeout(time.Second)); err != nil {
		t.Errorf("valid options: %v", err)
	}
}

// request sends a NATS request and decodes its JSON reply into v.
func request(t *testing.T, nc *nats.Conn, subject string, v any) {
	t.Helper()
	msg, err := nc.Request(subject, nil, 5*time.Second)
	if err != nil {
		t.Fatalf("request %s: %v", subject, err)
	}
	if err := json.Unmarshal(msg.Data, v); err != nil {
		t.Fatalf("reply of %s: %v", subject, err)
	}
}

func TestSlowConsumerIsLoggedAndCounted(t *testing.T) {
	t.Parallel()
	s := workertest.StartNATS(t)
	f := newFake(true)
	var logs workertest.LogBuffer
	m := newTestMetrics(t)
	// The endpoint handler never waits for a slot, so only a handler slower
	// than the arrivals fills the pending buffer: hold it on the first job.
	entered, hold := make(chan struct{}, 1), make(chan struct{})
	var once sync.Once
	hook := func(c *config) error {
		c.onReceive = func() { once.Do(func() { entered <- struct{}{}; <-hold }) }
		return nil
	}
	startWorker(t, workertest.Connect(t, s), f, WithMaxInFlight(1), WithPendingLimits(1, 1<<20), WithMetrics(m),
		WithLogger(zerolog.New(&logs)), hook)
	r := newReplies(t, workertest.Connect(t, s))
	r.send(t, "sfblocks.search", "s0")
	<-entered
	for i := 1; i < 6; i++ {
		r.send(t, "sfblocks.search", fmt.Sprint("s", i))
	}
	workertest.WaitFor(t, 10*time.Second, "the slow consumer to be counted", func() bool { return counterValue(t, m.SlowConsumer) >= 1 })
	if !strings.Contains(logs.String(), "slow consumer") {
		t.Errorf("slow consumer not logged: %s", logs.String())
	}
	close(hold)
	close(f.release)
}
