package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

// durableFast is a durable config with short waits for tests.
var durableFast = DurableConfig{AckWait: time.Second, FetchWait: 200 * time.Millisecond}

// publishJob publishes a durable job with id and optional Reply-To.
func publishJob(t *testing.T, js jetstream.JetStream, subject, id, replyTo string) *jetstream.PubAck {
	t.Helper()
	data, _ := json.Marshal(map[string]string{"id": id})
	msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
	if replyTo != "" {
		msg.Header.Set(sfblocks.HeaderReplyTo, replyTo)
	}
	ack, err := js.PublishMsg(context.Background(), msg, jetstream.WithMsgID(id))
	if err != nil {
		t.Fatalf("publishing job %s: %v", id, err)
	}
	return ack
}

func consumerInfo(t *testing.T, js jetstream.JetStream, block sfblocks.Block) *jetstream.ConsumerInfo {
	t.Helper()
	c, err := js.Consumer(context.Background(), sfblocks.DefaultJobsStream, string(block))
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func streamMsgs(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), sfblocks.DefaultJobsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestDurableSetupIsIdempotentAndConfigured(t *testing.T) {
	t.Parallel()
	s := workertest.StartNATS(t)
	// Three workers starting at once create or update the same objects.
	errs := make(chan error, 3)
	for i := 0; i < 3; i++ {
		go func() {
			w, err := New(workertest.Connect(t, s), newFake(false), WithMaxInFlight(4),
				WithDurable(DurableConfig{MaxDeliver: 3, MaxAttempts: 3, AckWait: 5 * time.Second, ResultsTTL: time.Hour}))
			if err == nil {
				err = w.Start(context.Background())
				t.Cleanup(func() { _ = w.Stop(context.Background()) })
			}
			errs <- err
		}()
	}
	for i := 0; i < 3; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent start: %v", err)
		}
	}
	js, _ := jetstream.New(workertest.Connect(t, s))
	st, err := js.Stream(context.Background(), sfblocks.DefaultJobsStream)
	if err != nil {
		t.Fatal(err)
	}
	sc := st.CachedInfo().Config
	if sc.Retention != jetstream.WorkQueuePolicy || sc.Storage != jetstream.FileStorage || sc.Duplicates != DefaultDuplicateWindow ||
		strings.Join(sc.Subjects, ",") != "sfblocks.jobs.search,sfblocks.jobs.insert" {
		t.Errorf("stream config = %+v", sc)
	}
	for _, b := range sfblocks.Blocks() {
		cc := consumerInfo(t, js, b).Config
		if cc.FilterSubject != "sfblocks.jobs."+string(b) || cc.AckPolicy != jetstream.AckExplicitPolicy ||
			cc.MaxDeliver != 3 || cc.AckWait != 5*time.Second || cc.MaxAckPending != DefaultFleetSize*4 {
			t.Errorf("consumer %s config = %+v", b, cc)
		}
	}
	kv, err := js.KeyValue(context.Background(), sfblocks.DefaultResultsBucket)
	if err != nil {
		t.Fatal(err)
	}
	ks, _ := kv.Status(context.Background())
	if ks.TTL() != time.Hour || ks.History() != 1 {
		t.Errorf("results bucket TTL %v history %d", ks.TTL(), ks.History())
	}
}

func TestDurableRoundTripAndKeptResult(t *testing.T) {
	t.Parallel()
	s := workertest.StartNATS(t)
	f := newFake(false)
	startWorker(t, workertest.Connect(t, s), f, WithDurable(durableFast))
	nc := workertest.Connect(t, s)
	js, _ := jetstream.New(nc)
	r := newReplies(t, nc)

	publishJob(t, js, "sfblocks.jobs.insert", "a:b c/é", "reply.1")
	msg, rep := r.next(t)
	if rep.ID != "a:b c/é" || rep.Status != sfblocks.StatusOK || rep.Attempt != 1 || msg.Subject != "reply.1" {
		t.Errorf("reply = %+v on %s", rep, msg.Subject)
	}
	kv, _ := js.KeyValue(context.Background(), sfblocks.DefaultResultsBucket)
	if kept := keptReply(t, kv, sfblocks.JobIdentity{Block: sfblocks.Insert, ID: "a:b c/é"}); string(kept) != string(msg.Data) {
		t.Errorf("kept result = %s; want the reply %s", kept, msg.Data)
	}
	// Without Reply-To the job still runs and its result is kept.
	publishJob(t, js, "sfblocks.jobs.search", "no-reply", "")
	workertest.WaitFor(t, 10*time.Second, "the kept result of no-reply", func() bool {
		_, err := kv.Get(context.Background(), sfblocks.JobIdentity{Block: sfblocks.Search, ID: "no-reply"}.Key())
		return err == nil
	})
	// The same id again after the duplicate window (or a new publish with
	// another message) is answered from the kept result: no second run.
	data, _ := json.Marshal(map[string]string{"id": "a:b c/é"})
	if _, err := js.PublishMsg(context.Background(), &nats.Msg{Subject: "sfblocks.jobs.insert", Data: data,
		Header: nats.Header{sfblocks.HeaderReplyTo: []string{"reply.2"}}}); err != nil {
		t.Fatal(err)
	}
	msg2, rep2 := r.next(t)
	if msg2.Subject != "reply.2" || string(msg2.Data) != string(msg.Data) || rep2.ID != "a:b c/é" {
		t.Errorf("second reply %s = %s, want the kept %s", msg2.Subject, msg2.Data, msg.Data)
	}
	if got := f.calls.Load(); got != 2 {
		t.Errorf("handler ran %d times, want 2 (the kept result answers the third)", got)
	}
	workertest.WaitFor(t, 10*time.Second, "an empty stream", func() bool { return streamMsgs(t, js) == 0 })
}

// A worker that died after keeping a result but before acking: the
// redelivery is answered with the kept result and never runs the job.
func TestDurableRedeliveryAnswersKeptResult(t *testing.T) {
	t.Parallel()
	s := workertest.StartNATS(t)
	// A first worker creates the stream, then stops.
	w0, err := New(workertest.Connect(t, s), newFake(false), WithDurable(durableFast))
	if err != nil {
		t.Fatal(err)
	}
	if err := w0.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := w0.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	nc := workertest.Connect(t, s)
	js, _ := jetstream.New(nc)
	r := newReplies(t, nc)
	publishJob(t, js, "sfblocks.jobs.insert", "job-1", "reply.job-1")
	publishJob(t, js, "sfblocks.jobs.insert", "job-2", "reply.job-2")

	// The "dying worker" takes both jobs, keeps job-1's result, acks nothing.
	cons, err := js.Consumer(context.Background(), sfblocks.DefaultJobsStream, "insert")
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(2, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range batch.Messages() {
		n++
	}
	if n != 2 {
		t.Fatalf("dying worker fetched %d jobs, want 2", n)
	}
	kept, _ := json.Marshal(sfblocks.KeptResult{Reply: json.RawMessage(`{"id":"job-1","status":"ok","object_id":"003KEPT","duration_ms":3,"attempt":1}`)})
	kv, _ := js.KeyValue(context.Background(), sfblocks.DefaultResultsBucket)
	if _, err := kv.Put(context.Background(), sfblocks.JobIdentity{Block: sfblocks.Insert, ID: "job-1"}.Key(), kept); err != nil {
		t.Fatal(err)
	}

	f := newFake(false)
	m := newTestMetrics(t)
	startWorker(t, workertest.Connect(t, s), f, WithDurable(durableFast), WithMetrics(m))
	got := map[string]*sfblocks.Reply{}
	for i := 0; i < 2; i++ {
		msg, rep := r.next(t)
		got[msg.Subject] = rep
	}
	if rep := got["reply.job-1"]; rep == nil || rep.ObjectID != "003KEPT" || rep.Attempt != 1 {
		t.Errorf("job-1 reply = %+v, want the kept result", rep)
	}
	// The dying worker never ran job-2: this is its first real attempt.
	if rep := got["reply.job-2"]; rep == nil || rep.Status != sfblocks.StatusOK || rep.Attempt != 1 {
		t.Errorf("job-2 reply = %+v, want a fresh run with attempt 1", rep)
	}
	if f.calls.Load() != 1 || len(f.ids) != 1 || f.ids[0] != "job-2" {
		t.Errorf("handler ran for %v, want only job-2", f.ids)
	}
	r.none(t)
	workertest.WaitFor(t, 10*time.Second, "an empty stream", func() bool { return streamMsgs(t, js) == 0 })
	if v := counterValue(t, m.DurableReplayed.WithLabelValues("insert")); v != 1 {
		t.Errorf("replayed = %v, want 1", v)
	}
	if v := counterValue(t, m.DurableRedelivered.WithLabelValues("insert")); v != 2 {
		t.Errorf("redelivered = %v, want 2", v)
	}
}

// The durable path shares the in-flight limit: jobs beyond it stay in the
// stream, not in a client buffer.
func TestDurableSharesInFlightLimit(t *testing.T) {
	t.Parallel()
	s := workertest.StartNATS(t)
	f := newFake(true)
	w := startWorker(t, workertest.Connect(t, s), f, WithMaxInFlight(3), WithDurable(durableFast))
	nc := workertest.Connect(t, s)
	js, _ := jetstream.New(nc)
	r := newReplies(t, nc)
	for i := 0; i < 10; i++ {
		publishJob(t, js, "sfblocks.jobs.search", fmt.Sprint("s", i), fmt.Sprint("reply.s", i))
	}
	f.waitEntered(t, 3)
	// A synchronous job waits for a slot too.
	r.send(t, "sfblocks.search", "sync-1")
	info := consumerInfo(t, js, sfblocks.Search)
	if info.NumAckPending != 3 || info.NumPending != 7 {
		t.Errorf("ack pending %d, pending %d; want 3 and 7 (a job leaves the stream only for a free slot)", info.NumAckPending, info.NumPending)
	}
	if got := w.InFlight(); got != 3 {
		t.Errorf("InFlight = %d, want 3", got)
	}
	close(f.release)
	seen := map[string]int{}
	for i := 0; i < 11; i++ {
		_, rep := r.next(t)
		seen[rep.ID]++
	}
	if len(seen) != 11 {
		t.Errorf("replies %v, want 11 distinct jobs", seen)
	}
	if f.maxConcurrent() > 3 {
		t.Errorf("ran %d jobs at once, limit 3", f.maxConcurrent())
	}
}

// Stop finishes and acks the jobs in flight; jobs not started stay in the
// stream for the next worker; nothing is answered twice.
func TestDurableDrain(t *testing.T) {
	t.Parallel()
	s := workertest.StartNATS(t)
	f := newFake(true)
	nc1 := workertest.Connect(t, s)
	w, err := New(nc1, f, WithMaxInFlight(2), WithDurable(durableFast), WithReplySubjects("reply.>"))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	nc := workertest.Connect(t, s)
	js, _ := jetstream.New(nc)
	r := newReplies(t, nc)
	for i := 0; i < 6; i++ {
		publishJob(t, js, "sfblocks.jobs.insert", fmt.Sprint("d", i), fmt.Sprint("reply.d", i))
	}
	f.waitEntered(t, 2)
	stopped := make(chan error, 1)
	go func() { stopped <- w.Stop(context.Background()) }()
	workertest.WaitFor(t, 10*time.Second, "Ready to report draining", func() bool { return errors.Is(w.Ready(), ErrDraining) })
	close(f.release)
	if err := <-stopped; err != nil {
		t.Fatalf("Stop = %v", err)
	}
	seen := map[string]int{}
	for i := 0; i < 2; i++ {
		_, rep := r.next(t)
		seen[rep.ID]++
	}
	r.none(t)
	info := consumerInfo(t, js, sfblocks.Insert)
	if info.NumAckPending != 0 || info.NumPending != 4 {
		t.Errorf("after Stop: ack pending %d, pending %d; want 0 and 4", info.NumAckPending, info.NumPending)
	}
	// The next worker takes the rest.
	f2 := newFake(false)
	startWorker(t, workertest.Connect(t, s), f2, WithDurable(durableFast))
	for i := 0; i < 4; i++ {
		_, rep := r.next(t)
		seen[rep.ID]++
	}
	r.none(t)
	for id, n := range seen {
		if n != 1 {
			t.Errorf("job %s answered %d times", id, n)
		}
	}
	if len(seen) != 6 {
		t.Errorf("answered %d jobs, want 6", len(seen))
	}
}

func TestDurableSetupFailsWithoutJetStream(t *testing.T) {
	t.Parallel()
	s := workertest.StartNATS(t, workertest.WithoutJetStream)
	w, err := New(workertest.Connect(t, s), newFake(false), WithDurable(DurableConfig{SetupTimeout: 2 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "JetStream") {
		t.Errorf("Start = %v, want a JetStream setup error", err)
	}
}

func TestDurableConfigValidation(t *testing.T) {
	t.Parallel()
	s := workertest.StartNATS(t)
	nc := workertest.Connect(t, s)
	tests := []struct {
		name  string
		given DurableConfig
	}{
		{"stream with a dot", DurableConfig{Stream: "A.B"}},
		{"bucket with a space", DurableConfig{ResultsBucket: "a b"}},
		{"short TTL", DurableConfig{ResultsTTL: time.Millisecond}},
		{"duplicate window above TTL", DurableConfig{ResultsTTL: time.Minute, DuplicateWindow: time.Hour}},
		{"short ack wait", DurableConfig{AckWait: 10 * time.Millisecond}},
		{"negative max deliver", DurableConfig{MaxDeliver: -2}},
		{"max deliver below attempts", DurableConfig{MaxDeliver: 3, MaxAttempts: 5}},
		{"zero-ish backoff", DurableConfig{RetryBackoff: time.Microsecond}},
		{"dlq named like the jobs stream", DurableConfig{DLQStream: sfblocks.DefaultJobsStream}},
		{"negative dlq cap", DurableConfig{DLQMaxMsgs: -1}},
		{"huge batch", DurableConfig{Batch: 5000}},
		{"tiny fetch wait", DurableConfig{FetchWait: time.Millisecond}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(nc, newFake(false), WithDurable(tc.given)); !errors.Is(err, ErrInvalidOption) {
				t.Errorf("New = %v, want ErrInvalidOption", err)
			}
		})
	}
}

func TestSettle(t *testing.T) {
	ok := &sfblocks.Reply{ID: "x", Status: sfblocks.StatusOK}
	unavailable := blocks.FailureReply("x", &sfblocks.Error{Code: sfblocks.CodeSalesforceUnavailable, Retryable: true})
	locked := blocks.FailureReply("x", &sfblocks.Error{Code: sfblocks.CodeSalesforceError, SalesforceCode: "UNABLE_TO_LOCK_ROW", Retryable: true, ResultCode: 400})
	timeout := blocks.FailureReply("x", &sfblocks.Error{Code: sfblocks.CodeTimeout, Retryable: true})
	permanent := blocks.FailureReply("x", &sfblocks.Error{Code: sfblocks.CodeSalesforceError, SalesforceCode: "REQUIRED_FIELD_MISSING", ResultCode: 400})
	open := blocks.FailureReply("x", &sfblocks.Error{Code: sfblocks.CodeSalesforceUnavailable, Retryable: true, Err: &fakeOpen{wait: 5 * time.Second}})
	p := retryPolicy{maxAttempts: 5, maxDeliver: -1, backoff: time.Second, maxBackoff: 4 * time.Second,
		jitter: func(d time.Duration) time.Duration { return d - 1 }} // the most jitter allowed
	tests := []struct {
		name      string
		given     outcome
		policy    *retryPolicy
		want      action
		wantDelay time.Duration
		wantReply bool
		wantRetry bool
		wantDLQ   string
		wantCode  sfblocks.Code
	}{
		{name: "success acks", given: outcome{reply: ok, attempt: 1, delivery: 1}, want: actionAck, wantReply: true},
		{name: "kept failure acks", given: outcome{reply: permanent, kept: true, attempt: 1, delivery: 2}, want: actionAck, wantReply: true},
		{name: "permanent failure is dead-lettered", given: outcome{reply: permanent, attempt: 1, delivery: 1}, want: actionTerm, wantReply: true, wantDLQ: sfblocks.ReasonPermanent},
		{name: "retryable failure retries with backoff", given: outcome{reply: unavailable, attempt: 1, delivery: 1}, want: actionNak, wantDelay: time.Second - 1, wantRetry: true},
		{name: "backoff doubles", given: outcome{reply: locked, attempt: 2, delivery: 7}, want: actionNak, wantDelay: 2*time.Second - 1, wantRetry: true},
		{name: "backoff is capped", given: outcome{reply: locked, attempt: 4, delivery: 4}, want: actionNak, wantDelay: 4*time.Second - 1, wantRetry: true},
		{name: "last attempt is dead-lettered", given: outcome{reply: unavailable, attempt: 5, delivery: 9}, want: actionTerm, wantReply: true, wantDLQ: sfblocks.ReasonAttemptsExhausted},
		{name: "a plain create that saved nothing retries", given: outcome{reply: locked, attempt: 1, delivery: 1}, want: actionNak, wantDelay: time.Second - 1, wantRetry: true},
		{name: "a failure that may have saved is ambiguous", given: outcome{reply: timeout, attempt: 1, delivery: 1, maybeSaved: true}, want: actionTerm, wantReply: true, wantDLQ: sfblocks.ReasonAmbiguousCreate},
		{name: "timeout of an upsert retries", given: outcome{reply: timeout, attempt: 1, delivery: 1}, want: actionNak, wantDelay: time.Second - 1, wantRetry: true},
		{name: "open breaker waits without an attempt", given: outcome{reply: open, attempt: 5, delivery: 30}, want: actionNak, wantDelay: 5*time.Second + 5*time.Second/4 + minNakDelay - 1},
		{name: "last delivery dead-letters", given: outcome{reply: unavailable, attempt: 1, delivery: 5},
			policy: &retryPolicy{maxAttempts: 3, maxDeliver: 5, backoff: time.Second, maxBackoff: time.Second}, want: actionTerm, wantReply: true, wantDLQ: sfblocks.ReasonMaxDeliveries, wantCode: sfblocks.CodeSalesforceUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pol := p
			if tc.policy != nil {
				pol = *tc.policy
			}
			got := settle(tc.given, pol)
			if got.action != tc.want || got.delay != tc.wantDelay || (got.reply != nil) != tc.wantReply || got.retry != tc.wantRetry || got.deadLetter != tc.wantDLQ {
				t.Fatalf("settle = %+v, want %s delay %v reply %v retry %v dead letter %q", got, tc.want, tc.wantDelay, tc.wantReply, tc.wantRetry, tc.wantDLQ)
			}
			if tc.wantCode != "" && (got.reply.Error == nil || got.reply.Error.Code != tc.wantCode) {
				t.Errorf("reply error = %+v, want %s", got.reply.Error, tc.wantCode)
			}
		})
	}
}

// fakeOpen is an open circuit breaker's error, as package breaker's
// OpenError presents itself.
type fakeOpen struct{ wait time.Duration }

func (e *fakeOpen) Error() string             { return "breaker open" }
func (e *fakeOpen) BreakerOpen() bool         { return true }
func (e *fakeOpen) RetryAfter() time.Duration { return e.wait }

// keptReply returns the reply kept for job in the results bucket kv.
func keptReply(t *testing.T, kv jetstream.KeyValue, job sfblocks.JobIdentity) []byte {
	t.Helper()
	e, err := kv.Get(context.Background(), job.Key())
	if err != nil {
		t.Fatalf("kept result of %+v: %v", job, err)
	}
	var k sfblocks.KeptResult
	if err := json.Unmarshal(e.Value(), &k); err != nil {
		t.Fatalf("kept result of %+v is not a KeptResult: %v", job, err)
	}
	return k.Reply
}

// A durable job without an id of its own is keyed by where the stream
// stored it. A jobs stream deleted and created again numbers its messages
// from 1 again while the results bucket still keeps the first stream's
// results: the new stream's first job must run, not be answered with the
// old stream's first job's result.
func TestDurableJobWithoutIDIsNotAnsweredFromAnEarlierStream(t *testing.T) {
	t.Parallel()
	s := workertest.StartNATS(t)
	nc := workertest.Connect(t, s)
	js, _ := jetstream.New(nc)
	r := newReplies(t, nc)
	f := newFake(false)
	publish := func(replyTo string) {
		t.Helper()
		msg := &nats.Msg{Subject: "sfblocks.jobs.search", Data: []byte(`{"query":"SELECT Id FROM Contact"}`), Header: nats.Header{}}
		msg.Header.Set(sfblocks.HeaderReplyTo, replyTo)
		if _, err := js.PublishMsg(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
	}

	w1 := startWorker(t, workertest.Connect(t, s), f, WithDurable(durableFast))
	publish("reply.1")
	_, first := r.next(t)
	if first.Status != sfblocks.StatusOK || !strings.HasPrefix(first.ID, sfblocks.DefaultJobsStream+"-1-") {
		t.Fatalf("first reply %+v, want ok with an id of the stream, sequence 1 and its time", first)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w1.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteStream(ctx, sfblocks.DefaultJobsStream); err != nil {
		t.Fatal(err)
	}

	startWorker(t, workertest.Connect(t, s), f, WithDurable(durableFast))
	publish("reply.2")
	_, second := r.next(t)
	if second.Status != sfblocks.StatusOK || second.ID == first.ID || !strings.HasPrefix(second.ID, sfblocks.DefaultJobsStream+"-1-") {
		t.Errorf("second stream's first job answered %+v; want its own run, with another id than the first's %s", second, first.ID)
	}
	if got := f.calls.Load(); got != 2 {
		t.Errorf("the handler ran %d times, want 2: the second job was answered with the first's kept result", got)
	}
}
