package worker

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks"
	"github.com/sfblocks/sfblocks/blocks/salesforce"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

// retryFast retries quickly so the tests stay short.
var retryFast = DurableConfig{AckWait: 2 * time.Second, FetchWait: 200 * time.Millisecond, MaxAttempts: 3,
	RetryBackoff: 20 * time.Millisecond, MaxRetryBackoff: 50 * time.Millisecond}

// simWorker starts the simulator and a worker running the real executor
// against it (account "sim"), with the durable path on.
func simWorker(t *testing.T, cfg DurableConfig) (*sfsim.Server, *nats.Conn, jetstream.JetStream, *Metrics) {
	t.Helper()
	sim := workertest.StartSim(t, sfsim.Options{})
	api, err := salesforce.New(&ccTokens{cfg: clientcredentials.Config{ClientID: sfsim.DefaultClientID,
		ClientSecret: sfsim.DefaultClientSecret, TokenURL: sim.MyDomainURL() + "/services/oauth2/token"}})
	if err != nil {
		t.Fatal(err)
	}
	exec, err := blocks.NewExecutor(blocks.StaticAccounts{Default: "sim", Clients: map[string]blocks.SalesforceAPI{"sim": api}})
	if err != nil {
		t.Fatal(err)
	}
	s := workertest.StartNATS(t)
	m := newTestMetrics(t)
	startWorker(t, workertest.Connect(t, s), exec, WithDurable(cfg), WithMetrics(m), WithLandingWindow(time.Second))
	nc := workertest.Connect(t, s)
	js, _ := jetstream.New(nc)
	return sim, nc, js, m
}

// publishRaw publishes a durable job payload with Reply-To "reply.<id>".
func publishRaw(t *testing.T, js jetstream.JetStream, block sfblocks.Block, id, payload string) {
	t.Helper()
	msg := &nats.Msg{Subject: "sfblocks.jobs." + string(block), Data: []byte(payload),
		Header: nats.Header{sfblocks.HeaderReplyTo: []string{"reply." + id}, "X-Scenario": []string{"callback"}}}
	if _, err := js.PublishMsg(context.Background(), msg, jetstream.WithMsgID(id)); err != nil {
		t.Fatal(err)
	}
}

// deadLetter reads job id's dead letter; nil when it has none.
func deadLetter(t *testing.T, js jetstream.JetStream, block sfblocks.Block, id string) (*sfblocks.DeadLetter, uint64) {
	t.Helper()
	s, err := js.Stream(context.Background(), sfblocks.DefaultDLQStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(context.Background(), sfblocks.DLQSubject(sfblocks.DefaultPrefix, sfblocks.JobIdentity{Block: block, ID: id}))
	if err != nil {
		return nil, 0
	}
	var dl sfblocks.DeadLetter
	if err := json.Unmarshal(m.Data, &dl); err != nil {
		t.Fatalf("dead letter is not JSON: %v", err)
	}
	return &dl, m.Sequence
}

func dlqMsgs(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), sfblocks.DefaultDLQStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestDurableRetriesLockRowToSuccess(t *testing.T) {
	t.Parallel()
	sim, nc, js, m := simWorker(t, retryFast)
	r := newReplies(t, nc)
	sim.Faults().LockNextWrites(2)
	before := sim.Stats().RecordsCreated
	// A plain create: UNABLE_TO_LOCK_ROW is Salesforce's own answer, so
	// nothing was saved and retrying cannot make a second record.
	publishRaw(t, js, sfblocks.Insert, "lock-1", `{"id":"lock-1","object":"Task","fields":{"Subject":"Call back"}}`)
	_, rep := r.next(t)
	if rep.Status != sfblocks.StatusOK || rep.Attempt != 3 || rep.ObjectID == "" {
		t.Fatalf("reply = %+v, want ok on attempt 3", rep)
	}
	r.none(t)
	created := sim.Stats().RecordsCreated - before
	retried := counterValue(t, m.DurableRetried.WithLabelValues("insert", "SALESFORCE_ERROR"))
	if created != 1 || retried != 2 {
		t.Errorf("records created %d, retries %v; want 1 and 2", created, retried)
	}
	workertest.WaitFor(t, 10*time.Second, "an empty stream", func() bool { return streamMsgs(t, js) == 0 })
	if n := dlqMsgs(t, js); n != 0 {
		t.Errorf("%d dead letters, want none", n)
	}
	// The failure state is cleared with the final outcome.
	kv, _ := js.KeyValue(context.Background(), sfblocks.DefaultAttemptsBucket)
	if _, err := kv.Get(context.Background(), sfblocks.JobIdentity{Block: sfblocks.Insert, ID: "lock-1"}.Key()); err == nil {
		t.Errorf("attempts of a finished job are still kept")
	}
	t.Logf("jobs sent 1, answered 1, retried %v, dead-lettered 0, records created %d", retried, created)
}

func TestDurablePermanentFailureDeadLetteredAtOnce(t *testing.T) {
	t.Parallel()
	sim, nc, js, m := simWorker(t, retryFast)
	r := newReplies(t, nc)
	payload := `{"id":"perm-1","object":"Contact","fields":{"FirstName":"NoLast"}}`
	start := time.Now().UTC()
	publishRaw(t, js, sfblocks.Insert, "perm-1", payload)
	msg, rep := r.next(t)
	if rep.Status != sfblocks.StatusFailed || rep.Error.Code != sfblocks.CodeSalesforceError || rep.Error.SalesforceCode != "REQUIRED_FIELD_MISSING" ||
		rep.Attempt != 1 || msg.Header.Get("Nats-Service-Error-Code") != "502" {
		t.Fatalf("reply = %+v", rep)
	}
	dl, _ := deadLetter(t, js, sfblocks.Insert, "perm-1")
	if dl == nil {
		t.Fatal("no dead letter")
	}
	if dl.JobID != "perm-1" || dl.Block != sfblocks.Insert || dl.Account != "sim" || dl.Path != "durable" || dl.Reason != sfblocks.ReasonPermanent ||
		dl.Subject != "sfblocks.jobs.insert" || string(dl.Payload) != payload || dl.Headers["X-Scenario"][0] != "callback" ||
		dl.Headers[sfblocks.HeaderReplyTo][0] != "reply.perm-1" || dl.Error.Code != sfblocks.CodeSalesforceError ||
		dl.Error.SalesforceCode != "REQUIRED_FIELD_MISSING" || dl.ResultCode != 400 || dl.ResultBody == "" || dl.Attempts != 1 ||
		dl.FirstFailure.Before(start.Add(-time.Second)) || dl.LastFailure.Before(dl.FirstFailure) {
		t.Errorf("dead letter = %+v", dl)
	}
	r.none(t)
	workertest.WaitFor(t, 10*time.Second, "an empty stream", func() bool { return streamMsgs(t, js) == 0 })
	if v := counterValue(t, m.DeadLettered.WithLabelValues("insert", "durable", sfblocks.ReasonPermanent)); v != 1 || sim.Stats().RecordsCreated != 0 {
		t.Errorf("dead-lettered %v, records %d", v, sim.Stats().RecordsCreated)
	}
	t.Logf("jobs sent 1, answered 1, retried 0, dead-lettered 1, records created 0")
}

func TestDurableAttemptsExhausted(t *testing.T) {
	t.Parallel()
	sim, nc, js, m := simWorker(t, retryFast)
	r := newReplies(t, nc)
	if err := sim.Faults().AddErrorRate(sfsim.ErrorRule{Rate: 1, Status: 503}); err != nil {
		t.Fatal(err)
	}
	publishRaw(t, js, sfblocks.Insert, "up-1", `{"id":"up-1","object":"Task","fields":{"Subject":"x"},"external_id":{"field":"External_Id__c","value":"ext-up-1"}}`)
	publishRaw(t, js, sfblocks.Search, "s-1", `{"id":"s-1","query":"SELECT Id FROM Contact LIMIT 1"}`)
	for i := 0; i < 2; i++ {
		_, rep := r.next(t)
		if rep.Status != sfblocks.StatusFailed || rep.Error.Code != sfblocks.CodeSalesforceUnavailable || rep.Attempt != 3 {
			t.Errorf("reply = %+v, want SALESFORCE_UNAVAILABLE on attempt 3", rep)
		}
	}
	r.none(t)
	for _, j := range []struct {
		block sfblocks.Block
		id    string
	}{{sfblocks.Insert, "up-1"}, {sfblocks.Search, "s-1"}} {
		dl, _ := deadLetter(t, js, j.block, j.id)
		if dl == nil || dl.Reason != sfblocks.ReasonAttemptsExhausted || dl.Attempts != 3 || dl.ResultCode != 503 || !dl.LastFailure.After(dl.FirstFailure) {
			t.Errorf("%s dead letter = %+v", j.id, dl)
		}
	}
	retried := counterValue(t, m.DurableRetried.WithLabelValues("insert", "SALESFORCE_UNAVAILABLE")) +
		counterValue(t, m.DurableRetried.WithLabelValues("search", "SALESFORCE_UNAVAILABLE"))
	if retried != 4 {
		t.Errorf("retries = %v, want 4", retried)
	}
	t.Logf("jobs sent 2, answered 2, retried %v, dead-lettered 2, records created %d", retried, sim.Stats().RecordsCreated)
}

// A plain create that timed out may still have been committed (Salesforce
// commits, then stalls past the client's deadline): it is reconciled, and
// the record found is the job's.
func TestDurableTimedOutCreateIsAdopted(t *testing.T) {
	t.Parallel()
	sim, nc, js, m := simWorker(t, retryFast)
	r := newReplies(t, nc)
	// Committed, then the answer withheld until the client gives up. (A
	// latency before the create does not do: whether the simulator's HTTP
	// server notices a client that left before the body was read is a
	// matter of timing.)
	if err := sim.Faults().Set(sfsim.FaultConfig{CommitThenDrop: &sfsim.CommitThenDrop{Rate: 1, Mode: sfsim.CommitWithhold,
		Delay: sfsim.Duration(2 * time.Second)}}); err != nil {
		t.Fatal(err)
	}
	publishRaw(t, js, sfblocks.Insert, "slow-1", `{"id":"slow-1","object":"Task","fields":{"Subject":"slow-1"},"timeout_ms":50}`)
	_, rep := r.next(t)
	if rep.Status != sfblocks.StatusOK || rep.Account != "sim" || rep.ObjectID == "" {
		t.Fatalf("reply = %+v %+v, want ok with the record the timed-out attempt made; simulator %+v", rep, rep.Error, sim.Stats())
	}
	if got := counterValue(t, m.Reconciled.WithLabelValues("adopted")); got != 1 {
		t.Errorf("reconciled adopted = %v, want 1", got)
	}
	if n := sim.Stats().RecordsCreated; n != 1 {
		t.Errorf("records created = %d, want 1", n)
	}
	r.none(t)
}

func TestSyncFailuresDeadLettered(t *testing.T) {
	t.Parallel()
	sim, nc, js, _ := simWorker(t, retryFast)
	_ = sim
	tests := []struct {
		name    string
		block   sfblocks.Block
		id      string
		payload string
		wantDLQ bool
	}{
		{"failed insert", sfblocks.Insert, "sync-i", `{"id":"sync-i","object":"Contact","fields":{"FirstName":"NoLast"}}`, true},
		{"failed search", sfblocks.Search, "sync-s", `{"id":"sync-s","query":"SELECT Nope FROM Contact"}`, false},
		{"invalid insert", sfblocks.Insert, "sync-bad", `{"id":"sync-bad","object":"Contact","fields":{},"bogus":1}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg, err := nc.Request("sfblocks."+string(tc.block), []byte(tc.payload), 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			var rep sfblocks.Reply
			if json.Unmarshal(msg.Data, &rep) != nil || rep.Status != sfblocks.StatusFailed {
				t.Fatalf("reply = %s", msg.Data)
			}
			var dl *sfblocks.DeadLetter
			if tc.wantDLQ {
				workertest.WaitFor(t, 10*time.Second, "the dead letter", func() bool { dl, _ = deadLetter(t, js, tc.block, tc.id); return dl != nil })
				if dl.Path != "sync" || dl.Reason != sfblocks.ReasonSyncFailure || dl.Attempts != 1 || string(dl.Payload) != tc.payload {
					t.Errorf("dead letter = %+v", dl)
				}
				return
			}
			// A later dead letter proves the earlier one would have been stored.
			if _, err := nc.Request("sfblocks.insert", []byte(`{"id":"probe-`+tc.id+`","object":"Contact","fields":{}}`), 10*time.Second); err != nil {
				t.Fatal(err)
			}
			workertest.WaitFor(t, 10*time.Second, "the probe's dead letter", func() bool { d, _ := deadLetter(t, js, sfblocks.Insert, "probe-"+tc.id); return d != nil })
			if d, _ := deadLetter(t, js, tc.block, tc.id); d != nil {
				t.Errorf("unexpected dead letter %+v", d)
			}
		})
	}
}
