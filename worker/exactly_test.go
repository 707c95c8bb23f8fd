package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks"
	"github.com/sfblocks/sfblocks/blocks/salesforce"
	"github.com/sfblocks/sfblocks/blocks/salesforce/breaker"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim/simdb"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

// These tests count the records the simulator holds, not the replies: each
// sends Inserts through the fault that makes duplicates in production and
// checks that exactly one record exists per job.

// exoFast is a durable config for short tests.
var exoFast = DurableConfig{AckWait: 2 * time.Second, FetchWait: 200 * time.Millisecond, MaxAttempts: 5,
	RetryBackoff: 20 * time.Millisecond, MaxRetryBackoff: 100 * time.Millisecond}

// ccTokens gets tokens from the simulator's client credentials flow, as an
// account does: they carry the identity URL ("id") that reconciliation
// reads the integration user from.
type ccTokens struct {
	cfg clientcredentials.Config
	mu  sync.Mutex
	tok *oauth2.Token
}

func (s *ccTokens) Token(ctx context.Context) (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok == nil {
		tok, err := s.cfg.Token(ctx)
		if err != nil {
			return nil, err
		}
		s.tok = tok
	}
	return s.tok, nil
}

// exo is one test's fleet: the simulator, a NATS server and the workers
// started on it, all running the real executor.
type exo struct {
	t    *testing.T
	sim  *sfsim.Server
	ns   *server.Server
	nc   *nats.Conn
	js   jetstream.JetStream
	idem map[string]string // account → idempotency field
	logs *workertest.LogBuffer
	// wrap, when set, stands between the executor and each account's
	// client (to inject failures the simulator cannot make).
	wrap func(*salesforce.Client) blocks.SalesforceAPI
	// simB, when set, is account b's org (account a's is sim).
	simB *sfsim.Server
	// breakers, when set, puts each account's calls through its breaker.
	breakers *breaker.Set
	// budget, when set, learns each account's usage from its answers.
	budget *Budget
	// opts are added to each account's client options.
	opts []salesforce.Option
}

func newExo(t *testing.T) *exo {
	t.Helper()
	e := &exo{t: t, sim: workertest.StartSim(t, sfsim.Options{}), ns: workertest.StartNATS(t), logs: &workertest.LogBuffer{}}
	e.nc, e.js = workertest.JetStream(t, e.ns)
	return e
}

// executor builds an executor with accounts "a" (the default) and "b" on
// the simulator.
func (e *exo) executor() *blocks.Executor {
	e.t.Helper()
	accounts := blocks.StaticAccounts{Default: "a", Clients: map[string]blocks.SalesforceAPI{}, IdempotencyFields: e.idem}
	for _, name := range []string{"a", "b"} {
		sim := e.sim
		if name == "b" && e.simB != nil {
			sim = e.simB
		}
		src := &ccTokens{cfg: clientcredentials.Config{ClientID: sfsim.DefaultClientID, ClientSecret: sfsim.DefaultClientSecret,
			TokenURL: sim.MyDomainURL() + "/services/oauth2/token"}}
		opts := append([]salesforce.Option(nil), e.opts...)
		if e.budget != nil {
			opts = append(opts, salesforce.WithUsageObserver(func(u salesforce.Usage) { e.budget.Observe(name, u.Used, u.Max) }))
		}
		if e.breakers != nil {
			opts = append(opts, salesforce.WithHTTPClient(e.breakers.For(name).Client(salesforce.SharedHTTPClient())))
		}
		api, err := salesforce.New(src, opts...)
		if err != nil {
			e.t.Fatal(err)
		}
		accounts.Clients[name] = api
		if e.wrap != nil {
			accounts.Clients[name] = e.wrap(api)
		}
	}
	ex, err := blocks.NewExecutor(accounts, blocks.WithDefaultTimeout(5*time.Second))
	if err != nil {
		e.t.Fatal(err)
	}
	return ex
}

// worker starts a worker on nc (a fresh connection when nil).
func (e *exo) worker(nc *nats.Conn, cfg DurableConfig, opts ...Option) *Worker {
	e.t.Helper()
	if nc == nil {
		nc = workertest.Connect(e.t, e.ns)
	}
	opts = append([]Option{WithDurable(cfg), WithLandingWindow(time.Second), WithMetrics(newTestMetrics(e.t)), WithReplySubjects("_INBOX.>", "reply.>"),
		WithLogger(e.logs.Logger(-1)), WithDrainTimeout(5 * time.Second)}, opts...)
	w, err := New(nc, e.executor(), opts...)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = w.Stop(context.Background()) })
	return w
}

// request sends a synchronous job and returns its reply.
func (e *exo) request(block sfblocks.Block, payload string) *sfblocks.Reply {
	e.t.Helper()
	msg, err := e.nc.Request(sfblocks.Subject(sfblocks.DefaultPrefix, block), []byte(payload), 20*time.Second)
	if err != nil {
		e.t.Fatalf("request: %v", err)
	}
	var r sfblocks.Reply
	if err := json.Unmarshal(msg.Data, &r); err != nil {
		e.t.Fatalf("reply %s: %v", msg.Data, err)
	}
	return &r
}

// publish publishes a durable job with the documented Nats-Msg-Id and a
// Reply-To subscribed by replies.
func (e *exo) publish(block sfblocks.Block, account, id, payload, replyTo string) {
	e.t.Helper()
	msg := &nats.Msg{Subject: sfblocks.JobsSubject(sfblocks.DefaultPrefix, block), Data: []byte(payload), Header: nats.Header{}}
	if replyTo != "" {
		msg.Header.Set(sfblocks.HeaderReplyTo, replyTo)
	}
	job := sfblocks.JobIdentity{Block: block, Account: account, ID: id}
	if _, err := e.js.PublishMsg(context.Background(), msg, jetstream.WithMsgID(sfblocks.MsgID(job))); err != nil {
		e.t.Fatal(err)
	}
}

// replies subscribes to subject and returns the replies received on it.
func (e *exo) replies(subject string) func(n int) []*sfblocks.Reply {
	e.t.Helper()
	sub, err := e.nc.SubscribeSync(subject)
	if err != nil {
		e.t.Fatal(err)
	}
	_ = sub.SetPendingLimits(-1, -1)
	return func(n int) []*sfblocks.Reply {
		e.t.Helper()
		var out []*sfblocks.Reply
		for len(out) < n {
			m, err := sub.NextMsg(30 * time.Second)
			if err != nil {
				e.t.Fatalf("%d of %d replies on %s: %v", len(out), n, subject, err)
			}
			var r sfblocks.Reply
			if err := json.Unmarshal(m.Data, &r); err != nil {
				e.t.Fatal(err)
			}
			out = append(out, &r)
		}
		return out
	}
}

// records returns the ids of the Tasks whose Subject is subject.
func (e *exo) records(subject string) []string {
	e.t.Helper()
	res, err := e.sim.DB().Query("SELECT Id FROM Task WHERE Subject = '"+salesforce.EscapeSOQLString(subject)+"'", simdb.QueryOptions{APIVersion: "66.0"})
	if err != nil {
		e.t.Fatal(err)
	}
	var ids []string
	for _, r := range res.Records {
		id, _ := r.Get("Id")
		ids = append(ids, id.(string))
	}
	return ids
}

func taskJob(id, subject string) string {
	return fmt.Sprintf(`{"id":%q,"object":"Task","fields":{"Subject":%q,"Status":"Completed","Priority":"Normal"}}`, id, subject)
}

func TestSyncInsertRetriedWithSameIDCreatesOnce(t *testing.T) {
	t.Parallel()
	e := newExo(t)
	e.worker(nil, exoFast)
	first := e.request(sfblocks.Insert, taskJob("cb-1", "callback cb-1"))
	again := e.request(sfblocks.Insert, taskJob("cb-1", "callback cb-1"))
	if first.Status != sfblocks.StatusOK || again.Status != sfblocks.StatusOK || again.ObjectID != first.ObjectID {
		t.Fatalf("first %+v, again %+v: want the same object_id twice", first, again)
	}
	if ids := e.records("callback cb-1"); len(ids) != 1 || ids[0] != first.ObjectID {
		t.Errorf("Salesforce holds %v, want exactly [%s]", ids, first.ObjectID)
	}
}

func TestCommitThenDropIsReconciledNotRepeated(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		path string
	}{{"sync", sfblocks.PathSync}, {"durable", sfblocks.PathDurable}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newExo(t)
			w := e.worker(nil, exoFast)
			if err := e.sim.Faults().SetCommitThenDrop(1, sfsim.CommitDrop, 0); err != nil {
				t.Fatal(err)
			}
			var r *sfblocks.Reply
			if tt.path == sfblocks.PathSync {
				r = e.request(sfblocks.Insert, taskJob("ctd-1", "lost answer"))
			} else {
				next := e.replies("reply.ctd")
				e.publish(sfblocks.Insert, "", "ctd-1", taskJob("ctd-1", "lost answer"), "reply.ctd")
				r = next(1)[0]
			}
			ids := e.records("lost answer")
			if r.Status != sfblocks.StatusOK || len(ids) != 1 || r.ObjectID != ids[0] {
				t.Fatalf("reply %+v %+v; Salesforce holds %v: want ok with the one record's id", r, r.Error, ids)
			}
			if got := counterValue(t, w.m.Reconciled.WithLabelValues("adopted")); got != 1 {
				t.Errorf("reconciled adopted = %v, want 1", got)
			}
		})
	}
}

func TestSearchAndInsertSharingAnIDAreTwoJobs(t *testing.T) {
	t.Parallel()
	e := newExo(t)
	e.worker(nil, exoFast)
	next := e.replies("reply.share.*")
	e.publish(sfblocks.Search, "", "call-42", `{"id":"call-42","query":"SELECT Id FROM Task WHERE Subject = 'shared id'"}`, "reply.share.search")
	first := next(1)[0]
	e.publish(sfblocks.Insert, "", "call-42", taskJob("call-42", "shared id"), "reply.share.insert")
	second := next(1)[0]
	if first.Status != sfblocks.StatusNoData {
		t.Errorf("search = %+v, want no_data", first)
	}
	if second.Status != sfblocks.StatusOK || second.ObjectID == "" {
		t.Errorf("insert = %+v %+v, want ok with an object_id (not the search's kept no_data)", second, second.Error)
	}
	if ids := e.records("shared id"); len(ids) != 1 {
		t.Errorf("Salesforce holds %v, want one record", ids)
	}
}

func TestAccountsDoNotShareJobs(t *testing.T) {
	t.Parallel()
	e := newExo(t)
	e.worker(nil, exoFast)
	next := e.replies("reply.acct")
	e.publish(sfblocks.Insert, "a", "j-7", `{"id":"j-7","account":"a","object":"Task","fields":{"Subject":"acct a"}}`, "reply.acct")
	e.publish(sfblocks.Insert, "b", "j-7", `{"id":"j-7","account":"b","object":"Task","fields":{"Subject":"acct b"}}`, "reply.acct")
	rs := next(2)
	if rs[0].ObjectID == rs[1].ObjectID || rs[0].Status != sfblocks.StatusOK || rs[1].Status != sfblocks.StatusOK {
		t.Fatalf("replies %+v, %+v: want two records", rs[0], rs[1])
	}
	if len(e.records("acct a")) != 1 || len(e.records("acct b")) != 1 {
		t.Error("each account's job should have made its own record")
	}
}

func TestJobIDReusedWithOtherContentIsRefused(t *testing.T) {
	t.Parallel()
	e := newExo(t)
	e.worker(nil, exoFast)
	first := e.request(sfblocks.Insert, taskJob("reuse-1", "first use"))
	second := e.request(sfblocks.Insert, taskJob("reuse-1", "second use"))
	if first.Status != sfblocks.StatusOK {
		t.Fatalf("first = %+v", first)
	}
	if second.Status != sfblocks.StatusFailed || second.Error.Code != sfblocks.CodeInvalidRequest ||
		!strings.Contains(second.Error.Message, `job id "reuse-1" was already used`) || second.ObjectID != "" {
		t.Fatalf("second = %+v %+v, want INVALID_REQUEST naming the reused id", second, second.Error)
	}
	if len(e.records("second use")) != 0 {
		t.Error("the conflicting job created a record")
	}
}

func TestIdempotencyFieldMakesCreatesUpserts(t *testing.T) {
	t.Parallel()
	e := newExo(t)
	e.idem = map[string]string{"a": simdb.JobIDField}
	w := e.worker(nil, exoFast)
	if err := e.sim.Faults().SetCommitThenDrop(1, sfsim.CommitDrop, 0); err != nil {
		t.Fatal(err)
	}
	next := e.replies("reply.idem")
	e.publish(sfblocks.Insert, "", "idem-1", taskJob("idem-1", "idempotent"), "reply.idem")
	go func() {
		// Let two attempts lose their answer, then let one through.
		for e.sim.Stats().FaultsInjected["commitThenDrop"] < 2 {
			time.Sleep(5 * time.Millisecond)
		}
		_ = e.sim.Faults().SetCommitThenDrop(0, "", 0)
	}()
	r := next(1)[0]
	ids := e.records("idempotent")
	if r.Status != sfblocks.StatusOK || len(ids) != 1 || r.ObjectID != ids[0] {
		t.Fatalf("reply %+v %+v; Salesforce holds %v: want one record", r, r.Error, ids)
	}
	res, err := e.sim.DB().Query("SELECT "+simdb.JobIDField+" FROM Task WHERE Id = '"+ids[0]+"'", simdb.QueryOptions{APIVersion: "66.0"})
	if err != nil || len(res.Records) != 1 {
		t.Fatalf("record = %v, %v", res, err)
	}
	if v, _ := res.Records[0].Get(simdb.JobIDField); v != blocks.IdempotencyValue(sfblocks.JobIdentity{Block: sfblocks.Insert, ID: "idem-1"}) {
		t.Errorf("record's idempotency field = %v", v)
	}
	if got := counterValue(t, w.m.Reconciled.WithLabelValues("adopted")) + counterValue(t, w.m.Reconciled.WithLabelValues("none")); got != 0 {
		t.Errorf("an upsert on the idempotency field was reconciled %v times; it never needs to be", got)
	}
}

// droppedCreates fails every create the way a connection dropped after
// the request went out does, without creating anything: the worker cannot
// tell it from a create that committed.
type droppedCreates struct {
	*salesforce.Client
	calls *atomic.Int64
}

func (d *droppedCreates) Create(ctx context.Context, object string, fields map[string]any) (*salesforce.SaveResult, error) {
	d.calls.Add(1)
	return nil, &url.Error{Op: "Post", URL: "https://example.my.salesforce.com/services/data/v66.0/sobjects/" + object, Err: io.ErrUnexpectedEOF}
}

// A create whose connection keeps dropping after the request went out is
// reconciled after each attempt (nothing is found), tried again only once
// the attempt can no longer land, and dead-lettered as ambiguous_create
// when its attempts run out: never a record twice, and never lost.
func TestDurableCreateThatNeverLandsIsDeadLettered(t *testing.T) {
	t.Parallel()
	e := newExo(t)
	var creates atomic.Int64
	e.wrap = func(c *salesforce.Client) blocks.SalesforceAPI { return &droppedCreates{Client: c, calls: &creates} }
	cfg := exoFast
	cfg.MaxAttempts = 3
	w := e.worker(nil, cfg)
	next := e.replies("reply.never")
	e.publish(sfblocks.Insert, "", "never-1", `{"id":"never-1","object":"Task","fields":{"Subject":"never lands"},"timeout_ms":200}`, "reply.never")
	r := next(1)[0]
	if r.Status != sfblocks.StatusFailed || r.Attempt != 3 || r.Error.Code != sfblocks.CodeSalesforceUnavailable {
		t.Fatalf("reply = %+v %+v, want the last attempt's failure, attempt 3", r, r.Error)
	}
	if got := creates.Load(); got != 3 {
		t.Errorf("creates sent = %d, want 3 (one per attempt, each after the one before could no longer land)", got)
	}
	if got := counterValue(t, w.m.Reconciled.WithLabelValues("none")); got < 3 {
		t.Errorf("reconciled none = %v, want at least 3", got)
	}
	dl := e.deadLetter(sfblocks.Insert, "never-1")
	if dl == nil || dl.Reason != sfblocks.ReasonAmbiguousCreate || dl.Attempts != 3 {
		t.Errorf("dead letter = %+v, want ambiguous_create after 3 attempts", dl)
	}
}

// deadLetter returns the dead letter of the default account's job id.
func (e *exo) deadLetter(block sfblocks.Block, id string) *sfblocks.DeadLetter {
	e.t.Helper()
	s, err := e.js.Stream(context.Background(), sfblocks.DefaultDLQStream)
	if err != nil {
		e.t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(context.Background(), sfblocks.DLQSubject(sfblocks.DefaultPrefix, sfblocks.JobIdentity{Block: block, ID: id}))
	if err != nil {
		return nil
	}
	var dl sfblocks.DeadLetter
	if err := json.Unmarshal(m.Data, &dl); err != nil {
		e.t.Fatal(err)
	}
	return &dl
}

// TestRunRecordIsNeverWrittenOverUnseen: an attempt's run record is written
// over the revision of the history the attempt was judged on. A record
// another run wrote meanwhile is returned to be judged, not overwritten;
// a write whose answer was lost is recognised as this run's own.
func TestRunRecordIsNeverWrittenOverUnseen(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	objs := singleNodeFleet(t)
	l := &ledger{results: objs.results, attempts: objs.attempts, claims: objs.claims, timeout: time.Second, window: time.Second}
	key := sfblocks.JobIdentity{Block: sfblocks.Insert, ID: "job-1"}.Key()
	mine := failureState{Running: &runRecord{Attempt: 2, Worker: "w1", TimeoutMS: 1000, Nonce: "mine"}}

	// Judged on "no history", but another run wrote its record meanwhile.
	theirs := failureState{Attempts: 1, Running: &runRecord{Attempt: 1, Worker: "w2", TimeoutMS: 1000, Nonce: "theirs"}}
	if err := l.record(ctx, key, theirs, time.Second); err != nil {
		t.Fatal(err)
	}
	now, err := l.begin(ctx, key, mine, 0, time.Second)
	if !errors.Is(err, errHistoryChanged) || now.Running == nil || now.Running.Nonce != "theirs" || now.revision == 0 {
		t.Fatalf("begin over a history written meanwhile = %+v, %v; want errHistoryChanged and the other run's record", now, err)
	}
	// Judged again on what is there now: written.
	h, err := l.begin(ctx, key, mine, now.revision, time.Second)
	if err != nil || h.revision <= now.revision {
		t.Fatalf("begin over the current revision = %+v, %v", h, err)
	}
	// The same write tried again (its answer lost): this run's own record.
	again, err := l.begin(ctx, key, mine, now.revision, time.Second)
	if err != nil || again.revision != h.revision {
		t.Fatalf("begin retried after its write landed = %+v, %v; want the record it wrote (revision %d)", again, err, h.revision)
	}
	got, err := l.history(ctx, key)
	if err != nil || got.Running == nil || got.Running.Nonce != "mine" || got.Attempts != 0 {
		t.Fatalf("history = %+v, %v; want this run's record", got, err)
	}
}

// TestCreateJudgedOnStaleHistoryJudgesAgain: a create whose history was
// read before an earlier attempt wrote its run record (a durable delivery
// reads it before claiming; a synchronous Insert assumes none) does not
// create: the run record write finds the earlier attempt's record, and the
// earlier attempt, which may still land, is waited for.
func TestCreateJudgedOnStaleHistoryJudgesAgain(t *testing.T) {
	t.Parallel()
	for _, path := range []string{sfblocks.PathDurable, sfblocks.PathSync} {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			e := newExo(t)
			w := e.worker(nil, exoFast)
			subject := "stale history " + path
			task := w.plan(path, sfblocks.Insert, []byte(taskJob("stale-1", subject)), "")
			if task.invalid != nil {
				t.Fatalf("plan: %+v", task.invalid)
			}
			earlier := failureState{Running: &runRecord{Attempt: 1, Worker: "gone", TimeoutMS: 5000, Fingerprint: task.fingerprint, Nonce: "earlier"}}
			if err := w.durable.ledger.record(t.Context(), task.identity.Key(), earlier, time.Second); err != nil {
				t.Fatal(err)
			}
			o := runOpts{path: path, attempt: 2}
			if path == sfblocks.PathDurable {
				o.hist = &history{} // read before the earlier attempt wrote
			}
			v := w.runTask(t.Context(), task, o)
			if v.kind != verdictPending {
				t.Errorf("verdict = %+v, want pending (the earlier attempt may still land)", v)
			}
			if ids := e.records(subject); len(ids) != 0 {
				t.Errorf("Salesforce holds %v, want nothing created while an earlier attempt may land", ids)
			}
		})
	}
}

// TestDurableSearchPublishedAgainIsAnsweredFromItsKeptResult: a durable
// Search's first delivery does not look for a kept result, so what an
// earlier job with its id kept is found when its own result is kept: the
// same job published again gets its kept answer, and a job that reuses the
// id with other content is refused, filed apart, and leaves the kept
// result as it was.
func TestDurableSearchPublishedAgainIsAnsweredFromItsKeptResult(t *testing.T) {
	t.Parallel()
	e := newExo(t)
	e.worker(nil, exoFast)
	next := e.replies("reply.again.*")
	publish := func(msgID, payload, replyTo string) {
		t.Helper()
		msg := &nats.Msg{Subject: sfblocks.JobsSubject(sfblocks.DefaultPrefix, sfblocks.Search), Data: []byte(payload),
			Header: nats.Header{sfblocks.HeaderReplyTo: []string{replyTo}}}
		// Each its own message id: as if published again past the duplicate window.
		if _, err := e.js.PublishMsg(t.Context(), msg, jetstream.WithMsgID(msgID)); err != nil {
			t.Fatal(err)
		}
	}
	job := `{"id":"again-1","query":"SELECT Id FROM Task WHERE Subject = 'published again'"}`
	publish("m1", job, "reply.again.1")
	first := next(1)[0]
	if first.Status != sfblocks.StatusNoData {
		t.Fatalf("first = %+v %+v, want no_data", first, first.Error)
	}
	kv, err := e.js.KeyValue(t.Context(), sfblocks.DefaultResultsBucket)
	if err != nil {
		t.Fatal(err)
	}
	identity := sfblocks.JobIdentity{Block: sfblocks.Search, ID: "again-1"}
	kept := string(keptReply(t, kv, identity))

	// A record now matches: a second run would find it, the kept answer does not.
	if r := e.request(sfblocks.Insert, taskJob("again-insert", "published again")); r.Status != sfblocks.StatusOK {
		t.Fatalf("insert = %+v %+v", r, r.Error)
	}
	publish("m2", job, "reply.again.2")
	if again := next(1)[0]; again.Status != sfblocks.StatusNoData || again.ID != "again-1" {
		t.Errorf("published again = %+v, want the kept no_data", again)
	}

	publish("m3", `{"id":"again-1","query":"SELECT Id FROM Contact"}`, "reply.again.3")
	other := next(1)[0]
	if other.Status != sfblocks.StatusFailed || other.Error == nil || other.Error.Code != sfblocks.CodeInvalidRequest ||
		!strings.Contains(other.Error.Message, `job id "again-1" was already used`) {
		t.Fatalf("reused id = %+v %+v, want INVALID_REQUEST naming the reused id", other, other.Error)
	}
	if got := string(keptReply(t, kv, identity)); got != kept {
		t.Errorf("kept result after the reuse = %s, want the first job's %s", got, kept)
	}
	if dl := e.deadLetter(sfblocks.Search, "again-1"); dl != nil {
		t.Errorf("a dead letter under the first job's identity: %+v; the conflicting job's is filed apart", dl)
	}
}

// TestSyncInsertWhoseResultWasNotKeptIsAdoptedOnRetry: a synchronous
// Insert is answered before its result is kept. When the keep never
// happens (the worker died between the two), a retry with the same id
// waits for the result while the first run's lease lasts, then reconciles
// the run record and adopts the record the first run made: one record.
func TestSyncInsertWhoseResultWasNotKeptIsAdoptedOnRetry(t *testing.T) {
	t.Parallel()
	e := newExo(t)
	e.worker(nil, exoFast)
	job := `{"id":"unkept-1","timeout_ms":1000,"object":"Task","fields":{"Subject":"unkept result","Status":"Completed"}}`
	first := e.request(sfblocks.Insert, job)
	if first.Status != sfblocks.StatusOK || first.ObjectID == "" {
		t.Fatalf("first = %+v %+v", first, first.Error)
	}
	kv, err := e.js.KeyValue(t.Context(), sfblocks.DefaultResultsBucket)
	if err != nil {
		t.Fatal(err)
	}
	key := sfblocks.JobIdentity{Block: sfblocks.Insert, ID: "unkept-1"}.Key()
	workertest.WaitFor(t, 10*time.Second, "the first run's kept result", func() bool {
		_, err := kv.Get(t.Context(), key)
		return err == nil
	})
	// As if the worker had died after answering, before keeping.
	if err := kv.Purge(t.Context(), key); err != nil {
		t.Fatal(err)
	}
	// The lease (1 s + 5 s) is still held: the retry waits for a result
	// that does not come, and says to retry.
	if r := e.request(sfblocks.Insert, job); r.Status != sfblocks.StatusFailed || r.Error == nil || r.Error.Code != sfblocks.CodeTimeout {
		t.Fatalf("retry while the lease is held = %+v %+v, want a retryable TIMEOUT", r, r.Error)
	}
	var again *sfblocks.Reply
	workertest.WaitFor(t, 20*time.Second, "a retry after the lease ran out", func() bool {
		again = e.request(sfblocks.Insert, job)
		return again.Status == sfblocks.StatusOK
	})
	if again.ObjectID != first.ObjectID {
		t.Errorf("retry answered %s, want the first run's %s (adopted)", again.ObjectID, first.ObjectID)
	}
	if ids := e.records("unkept result"); len(ids) != 1 {
		t.Errorf("Salesforce holds %v, want one record", ids)
	}
}
