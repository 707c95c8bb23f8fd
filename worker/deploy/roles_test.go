package deploy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/auth"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
	"github.com/sfblocks/sfblocks/worker"
	"github.com/sfblocks/sfblocks/worker/client"
	"github.com/sfblocks/sfblocks/worker/deploy"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

// The worker role is enough for everything a worker does, and nothing it
// does is refused: both paths, a synchronous insert waiting for the same
// job run by another request (a watch of the results bucket), a dead
// letter, a dead letter kept by reference (the object store), status
// reports and the fleet's token store with a contended refresh lease. The
// server logs no permissions violation at all.
func TestWorkerRoleRunsEverythingWithoutViolations(t *testing.T) {
	t.Parallel()
	ns := workertest.StartRolesNATS(t)
	sim, exec := simExecutor(t)
	w := startWorker(t, workerConn(ns), exec)
	tenant := workertest.ConnectAs(t, ns.Server, deploy.TenantUser("a"))
	c, err := client.New(tenant, client.WithTimeout(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	runBothPaths(t, c)
	ctx := context.Background()

	// Two synchronous inserts with one id: the second finds the first's
	// claim and watches for its result.
	if err := sim.Faults().SetLatency(sfsim.Latency{Fixed: sfsim.Duration(600 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	ids := make([]string, 2)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 150 * time.Millisecond)
			rep, err := c.Insert(ctx, &sfblocks.InsertRequest{ID: "sync-twice", Object: "Task", Fields: map[string]any{"Subject": "Call"}})
			if err != nil {
				t.Errorf("sync insert %d: %v", i, err)
				return
			}
			ids[i] = rep.ObjectID
		}()
	}
	wg.Wait()
	if err := sim.Faults().SetLatency(sfsim.Latency{}); err != nil {
		t.Fatal(err)
	}
	if ids[0] == "" || ids[0] != ids[1] || sim.Stats().RecordsCreated != 2 {
		t.Errorf("the same sync insert twice: records %v, %d created in all; want one record, answered twice", ids, sim.Stats().RecordsCreated)
	}

	// A permanent failure is dead-lettered; so is a job of the largest
	// size, by reference.
	rep, _ := c.DoDurable(ctx, sfblocks.Insert, &sfblocks.InsertRequest{ID: "contact-1", Object: "Contact", Fields: map[string]any{"FirstName": "Ada"}})
	if rep == nil || rep.Error == nil || rep.Error.SalesforceCode != "REQUIRED_FIELD_MISSING" {
		t.Fatalf("failing durable insert: %+v", rep)
	}
	big := bytes.Repeat([]byte{0xff, 0x00, 0x7f}, int(tenant.MaxPayload()-1024)/3)
	if _, err := c.PublishDurable(ctx, sfblocks.Insert, big); err != nil {
		t.Fatal(err)
	}

	// Status reports and the token store, as `sfblocks serve` runs them.
	wnc, err := worker.Connect(workerConn(ns))
	if err != nil {
		t.Fatal(err)
	}
	defer wnc.Close()
	wjs, _ := jetstream.New(wnc)
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	err = worker.ReportStatus(sctx, wjs, w.ID(), func() []worker.AccountStatus {
		return []worker.AccountStatus{{Account: "sim", Breaker: "closed"}}
	}, worker.StatusConfig{Interval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	cipher, _, err := auth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	stores := make([]*auth.KVStore, 2)
	for i := range stores {
		if stores[i], err = auth.NewKVStore(ctx, wjs, auth.KVStoreConfig{Cipher: cipher, Holder: fmt.Sprint("worker-", i)}); err != nil {
			t.Fatal(err)
		}
	}
	lease, err := stores[0].Lease(ctx, "sim")
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(200*time.Millisecond, func() { lease.Release(context.Background()) })
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	other, err := stores[1].Lease(lctx, "sim") // waits for the release, watching the lease
	if err != nil {
		t.Fatalf("second lease: %v", err)
	}
	other.Release(ctx)
	if _, err := stores[1].Put(ctx, "sim", &auth.Record{AccessToken: "at", InstanceURL: sim.InstanceURL()}); err != nil {
		t.Fatal(err)
	}
	if rec, _, err := stores[0].Load(ctx, "sim"); err != nil || rec == nil || rec.AccessToken != "at" {
		t.Fatalf("token record: %+v, %v", rec, err)
	}

	// What the worker wrote is where the operator finds it.
	op := workertest.ConnectAs(t, ns.Server, deploy.OperatorUser)
	oc, _ := client.New(op)
	var dls []*sfblocks.DeadLetter
	workertest.WaitFor(t, 20*time.Second, "two dead letters", func() bool {
		dls, err = oc.ListDeadLetters(ctx, client.DLQFilter{})
		return err == nil && len(dls) == 2
	})
	if byRef := dls[0].PayloadRef + dls[1].PayloadRef; !strings.HasPrefix(byRef, worker.DefaultPayloadsBucket+"/") {
		t.Errorf("no dead letter kept by reference: %+v", dls)
	}
	ojs, _ := jetstream.New(op)
	workertest.WaitFor(t, 10*time.Second, "the worker's status report", func() bool {
		st, err := worker.ReadStatus(ctx, ojs, worker.StatusConfig{})
		return err == nil && len(st) == 1 && st[0].Worker == w.ID()
	})
	if v := ns.Violations(); len(v) > 0 {
		t.Errorf("the server logged %d permissions violations:\n%q", len(v), v)
	}
}

// A tenant's runtime can run jobs on both paths and get their replies,
// and nothing else: every attempt to reach a bucket, the dead letters, the
// object store, the JetStream API, the acks, the jobs themselves or
// another inbox is refused by the server with a permissions violation,
// and afterwards no stream or bucket has changed.
func TestTenantRoleSendsJobsAndNothingElse(t *testing.T) {
	t.Parallel()
	ns := workertest.StartRolesNATS(t)
	_, exec := simExecutor(t)
	startWorker(t, workerConn(ns), exec)
	var errs asyncErrors
	tenant := workertest.ConnectAs(t, ns.Server, deploy.TenantUser("a"), errs.option())
	c, err := client.New(tenant, client.WithTimeout(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// Allowed: sync and durable jobs, and a fire-and-forget durable job
	// whose reply goes to an inbox of the tenant's own.
	runBothPaths(t, c)
	inbox := tenant.NewInbox()
	sub, err := tenant.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PublishDurable(ctx, sfblocks.Search, &sfblocks.SearchRequest{ID: "later", Query: "SELECT Id FROM Contact LIMIT 1"},
		client.WithReplyTo(inbox)); err != nil {
		t.Fatal(err)
	}
	if m, err := sub.NextMsg(20 * time.Second); err != nil || !bytes.Contains(m.Data, []byte(`"id":"later"`)) {
		t.Fatalf("reply of a published durable job: %v, %v", m, err)
	}
	// Dead letters (one by reference, in the object store) and kept
	// results now exist, for the tenant to fail to read.
	if rep, _ := c.DoDurable(ctx, sfblocks.Insert, &sfblocks.InsertRequest{ID: "bad-1", Object: "Contact", Fields: map[string]any{"FirstName": "Ada"}}); rep == nil || rep.Status != sfblocks.StatusFailed {
		t.Fatalf("failing durable insert: %+v", rep)
	}
	if _, err := c.PublishDurable(ctx, sfblocks.Insert, bytes.Repeat([]byte{0xff}, int(tenant.MaxPayload()-1024))); err != nil {
		t.Fatal(err)
	}
	op := workertest.ConnectAs(t, ns.Server, deploy.OperatorUser)
	opc, _ := client.New(op)
	workertest.WaitFor(t, 20*time.Second, "two dead letters", func() bool {
		dls, err := opc.ListDeadLetters(ctx, client.DLQFilter{})
		return err == nil && len(dls) == 2
	})
	// The worker opens the status and tokens buckets only in `sfblocks
	// serve`; fill them as it would, so that the tenant is refused
	// entries that exist.
	wnc, err := worker.Connect(workerConn(ns))
	if err != nil {
		t.Fatal(err)
	}
	defer wnc.Close()
	wjs, _ := jetstream.New(wnc)
	for key, b := range map[string]string{"sim.worker-1": sfblocks.DefaultStatusBucket, "token.sim": auth.DefaultBucket} {
		kv, err := wjs.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: b})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Put(ctx, key, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	before := streamStates(t, ns)
	for name, st := range before {
		if name == worker.DefaultParkedStream || name == "KV_"+worker.DefaultBudgetBucket || name == "KV_"+worker.DefaultClaimsBucket {
			continue // may be empty here (claims: see streamStates); only compared after
		}
		if st.Missing || st.Msgs == 0 && name != sfblocks.DefaultJobsStream {
			t.Fatalf("stream %s is %+v; the tenant must be refused what exists", name, st)
		}
	}

	tjs, err := jetstream.New(tenant)
	if err != nil {
		t.Fatal(err)
	}
	quick := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 3*time.Second) }
	publish := func(subject string) func() error {
		return func() error { return tenant.Publish(subject, []byte(`{"x":1}`)) }
	}
	request := func(subject string) func() error {
		return func() error {
			_, err := tenant.Request(subject, nil, 3*time.Second)
			if err == nil {
				return fmt.Errorf("a reply came")
			}
			return err
		}
	}
	subscribe := func(subject string) func() error {
		return func() error {
			if _, err := tenant.SubscribeSync(subject); err != nil {
				return err
			}
			// The server refuses the subscription asynchronously.
			return tenant.Flush()
		}
	}
	queueSubscribe := func(subject, queue string) func() error {
		return func() error {
			_, err := tenant.QueueSubscribeSync(subject, queue)
			return err
		}
	}
	kvGet := func(bucket string) func() error {
		return func() error {
			ctx, cancel := quick()
			defer cancel()
			_, err := tjs.KeyValue(ctx, bucket)
			return err
		}
	}
	kvPut := func(bucket string) func() error {
		return func() error {
			ctx, cancel := quick()
			defer cancel()
			_, err := tjs.Publish(ctx, "$KV."+bucket+".forged", []byte("x"))
			return err
		}
	}
	directGet := func(bucket string) string {
		return "$JS.API.DIRECT.GET.KV_" + bucket + ".$KV." + bucket + ".token.sim"
	}
	tests := []struct {
		name    string
		do      func() error
		subject string // the subject the server names in the violation
		// mayReturnNil: a publish or a subscription that nats.go queues
		// without waiting, refused by the server afterwards.
		mayReturnNil bool
	}{
		{"open the tokens bucket", kvGet(auth.DefaultBucket), "$JS.API.STREAM.INFO.KV_sfblocks_tokens", false},
		{"direct get a token", request(directGet(auth.DefaultBucket)), directGet(auth.DefaultBucket), false},
		{"put a token", kvPut(auth.DefaultBucket), "$KV.sfblocks_tokens.forged", false},
		{"watch the tokens", subscribe("$KV.sfblocks_tokens.>"), "$KV.sfblocks_tokens.>", true},
		{"open the results bucket", kvGet(sfblocks.DefaultResultsBucket), "$JS.API.STREAM.INFO.KV_sfblocks_results", false},
		{"direct get a result", request(directGet(sfblocks.DefaultResultsBucket)), directGet(sfblocks.DefaultResultsBucket), false},
		{"put a result", kvPut(sfblocks.DefaultResultsBucket), "$KV.sfblocks_results.forged", false},
		{"watch the results", subscribe("$KV.sfblocks_results.>"), "$KV.sfblocks_results.>", true},
		{"read a kept result with the client", func() error {
			ctx, cancel := quick()
			defer cancel()
			_, err := c.Result(ctx, sfblocks.JobIdentity{Block: sfblocks.Search, ID: "later"})
			return err
		}, "$JS.API.STREAM.INFO.KV_sfblocks_results", false},
		{"open the attempts bucket", kvGet(sfblocks.DefaultAttemptsBucket), "$JS.API.STREAM.INFO.KV_sfblocks_attempts", false},
		{"put an attempt", kvPut(sfblocks.DefaultAttemptsBucket), "$KV.sfblocks_attempts.forged", false},
		{"open the claims bucket", kvGet(worker.DefaultClaimsBucket), "$JS.API.STREAM.INFO.KV_sfblocks_claims", false},
		{"take a claim", kvPut(worker.DefaultClaimsBucket), "$KV.sfblocks_claims.forged", false},
		{"watch the claims", subscribe("$KV.sfblocks_claims.>"), "$KV.sfblocks_claims.>", true},
		{"open the status bucket", kvGet(sfblocks.DefaultStatusBucket), "$JS.API.STREAM.INFO.KV_sfblocks_status", false},
		{"forge a status report", kvPut(sfblocks.DefaultStatusBucket), "$KV.sfblocks_status.forged", false},
		{"list dead letters with the client", func() error {
			ctx, cancel := quick()
			defer cancel()
			_, err := c.ListDeadLetters(ctx, client.DLQFilter{})
			return err
		}, "$JS.API.STREAM.NAMES", false},
		{"get a dead letter", request("$JS.API.STREAM.MSG.GET.SFBLOCKS_DLQ"), "$JS.API.STREAM.MSG.GET.SFBLOCKS_DLQ", false},
		{"read dead letters as they are written", subscribe("sfblocks.dlq.>"), "sfblocks.dlq.>", true},
		{"publish a dead letter", publish("sfblocks.dlq.insert._.Zm9yZ2Vk"), "sfblocks.dlq.insert._.Zm9yZ2Vk", true},
		{"open the payload store", func() error {
			ctx, cancel := quick()
			defer cancel()
			_, err := tjs.ObjectStore(ctx, worker.DefaultPayloadsBucket)
			return err
		}, "$JS.API.STREAM.INFO.OBJ_sfblocks_dlq_payloads", false},
		{"write a payload chunk", publish("$O.sfblocks_dlq_payloads.C.forged"), "$O.sfblocks_dlq_payloads.C.forged", true},
		{"read payloads", subscribe("$O.sfblocks_dlq_payloads.>"), "$O.sfblocks_dlq_payloads.>", true},
		{"account info", request("$JS.API.INFO"), "$JS.API.INFO", false},
		{"delete the jobs stream", request("$JS.API.STREAM.DELETE.SFBLOCKS_JOBS"), "$JS.API.STREAM.DELETE.SFBLOCKS_JOBS", false},
		{"purge the dead letters", request("$JS.API.STREAM.PURGE.SFBLOCKS_DLQ"), "$JS.API.STREAM.PURGE.SFBLOCKS_DLQ", false},
		{"pull other tenants' durable jobs", request("$JS.API.CONSUMER.MSG.NEXT.SFBLOCKS_JOBS.insert"), "$JS.API.CONSUMER.MSG.NEXT.SFBLOCKS_JOBS.insert", false},
		{"make a consumer of the jobs", request("$JS.API.CONSUMER.CREATE.SFBLOCKS_JOBS"), "$JS.API.CONSUMER.CREATE.SFBLOCKS_JOBS", false},
		{"forge an ack", publish("$JS.ACK.SFBLOCKS_JOBS.insert.1.1.1.1.0"), "$JS.ACK.SFBLOCKS_JOBS.insert.1.1.1.1.0", true},
		{"read every synchronous job", subscribe("sfblocks.search"), "sfblocks.search", true},
		{"take jobs as a worker would", queueSubscribe("sfblocks.insert", worker.DefaultQueueGroup), "sfblocks.insert", true},
		{"read another tenant's replies", subscribe(deploy.TenantInboxPrefix("b") + ".>"), "_INBOX.tenant.b.>", true},
		{"read every inbox", subscribe("_INBOX.>"), "_INBOX.>", true},
		{"spoof a reply to another tenant", publish(deploy.TenantInboxPrefix("b") + ".x"), "_INBOX.tenant.b.x", true},
		{"discover the workers", request("$SRV.PING"), "$SRV.PING", false},
		{"ask the system account", request("$SYS.REQ.SERVER.PING"), "$SYS.REQ.SERVER.PING", false},
	}
	// The group returns once its parallel subtests are done.
	t.Run("refused", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				err := tt.do()
				if err == nil && !tt.mayReturnNil {
					t.Errorf("no error; want the operation to fail")
				}
				if v := errs.violation(tt.subject); v == nil {
					t.Errorf("no permissions violation for %q (operation returned %v)", tt.subject, err)
				}
			})
		}
	})

	// Nothing changed, and the tenant still runs jobs.
	if after := streamStates(t, ns); !reflect.DeepEqual(after, before) {
		t.Errorf("the streams changed:\nbefore %+v\nafter  %+v", before, after)
	}
	runBothPaths(t, c)
}

// One tenant cannot read another's replies, nor can the operator or a
// worker: the deny of the tenants' inbox root filters even a subscription
// to every inbox.
func TestTenantRepliesStayWithTheTenant(t *testing.T) {
	t.Parallel()
	ns := workertest.StartRolesNATS(t)
	_, exec := simExecutor(t)
	startWorker(t, workerConn(ns), exec)

	var errsB asyncErrors
	tenantB := workertest.ConnectAs(t, ns.Server, deploy.TenantUser("b"), errsB.option())
	var errsOp asyncErrors
	op := workertest.ConnectAs(t, ns.Server, deploy.OperatorUser, errsOp.option())
	wnc, err := worker.Connect(workerConn(ns))
	if err != nil {
		t.Fatal(err)
	}
	defer wnc.Close()

	aInbox := deploy.TenantInboxPrefix("a") + ".>"
	seen := make(chan string, 100)
	watch := func(nc *nats.Conn, subject string) {
		t.Helper()
		if _, err := nc.Subscribe(subject, func(m *nats.Msg) {
			if strings.HasPrefix(m.Subject, deploy.TenantInboxRoot+".") {
				seen <- nc.Opts.User + " saw " + m.Subject
			}
		}); err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	watch(tenantB, aInbox)
	watch(op, aInbox)
	watch(op, "_INBOX.>") // allowed, but the tenants' part is filtered out
	watch(wnc, "_INBOX.>")

	tenantA := workertest.ConnectAs(t, ns.Server, deploy.TenantUser("a"))
	c, _ := client.New(tenantA)
	for range 3 {
		runBothPaths(t, c)
	}
	if err := errsB.violation(aInbox); err == nil {
		t.Error("tenant-b's subscription to tenant-a's inbox was not refused")
	}
	if err := errsOp.violation(aInbox); err == nil {
		t.Error("the operator's subscription to tenant-a's inbox was not refused")
	}
	// A last round trip on each connection: anything in flight has arrived.
	for _, nc := range []*nats.Conn{tenantB, op, wnc} {
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	close(seen)
	for s := range seen {
		t.Error(s)
	}
}

// A forged reply subject cannot turn the worker or JetStream against the
// fleet: the worker's allow-list refuses a job whose reply subject is a
// JetStream API call before it runs (and the server would refuse the
// publish anyway: the worker may answer only on inboxes), and JetStream's
// PubAck of a durable job published with such a reply subject is not
// taken as an API call.
func TestForgedReplySubjectsReachNothing(t *testing.T) {
	t.Parallel()
	ns := workertest.StartRolesNATS(t)
	_, exec := simExecutor(t)
	startWorker(t, workerConn(ns), exec)
	tenant := workertest.ConnectAs(t, ns.Server, deploy.TenantUser("a"))
	c, _ := client.New(tenant)
	runBothPaths(t, c) // the streams and consumers exist

	before := streamStates(t, ns)
	search := []byte(`{"query":"SELECT Id FROM Contact LIMIT 1"}`)
	forged := []string{
		"$JS.API.STREAM.DELETE." + sfblocks.DefaultJobsStream,
		"$JS.API.STREAM.PURGE." + sfblocks.DefaultDLQStream,
		"$JS.API.CONSUMER.DELETE." + sfblocks.DefaultJobsStream + ".insert",
	}
	for _, reply := range forged {
		// A synchronous job: the worker answers on the message's reply.
		if err := tenant.PublishRequest(sfblocks.Subject(sfblocks.DefaultPrefix, sfblocks.Search), reply, search); err != nil {
			t.Fatal(err)
		}
		// A durable job: the worker answers on Reply-To; JetStream sends
		// its PubAck to the message's reply.
		msg := &nats.Msg{Subject: sfblocks.JobsSubject(sfblocks.DefaultPrefix, sfblocks.Search), Reply: reply, Data: search,
			Header: nats.Header{sfblocks.HeaderReplyTo: []string{reply}}}
		if err := tenant.PublishMsg(msg); err != nil {
			t.Fatal(err)
		}
	}
	if err := tenant.Flush(); err != nil {
		t.Fatal(err)
	}
	// The worker's allow-list refuses every one before the server must:
	// the synchronous jobs are not run, the durable ones are dead-lettered
	// apart (reason reply_refused), and the worker never publishes there.
	workertest.WaitFor(t, 20*time.Second, "the durable jobs refused and acked", func() bool {
		after := streamStates(t, ns)
		return after[sfblocks.DefaultJobsStream].Msgs == 0 &&
			after[sfblocks.DefaultDLQStream].LastSeq == before[sfblocks.DefaultDLQStream].LastSeq+uint64(len(forged))
	})
	after := streamStates(t, ns)
	jobs := after[sfblocks.DefaultJobsStream]
	if jobs.LastSeq != before[sfblocks.DefaultJobsStream].LastSeq+uint64(len(forged)) || jobs.Consumers != 2 {
		t.Errorf("jobs stream %+v, want %d more jobs and both consumers", jobs, len(forged))
	}
	dlq := after[sfblocks.DefaultDLQStream]
	for _, name := range []string{sfblocks.DefaultJobsStream, sfblocks.DefaultDLQStream} {
		delete(after, name)
		delete(before, name)
	}
	if !reflect.DeepEqual(after, before) {
		t.Errorf("the streams changed:\nbefore %+v\nafter  %+v", before, after)
	}
	if dlq.Msgs < uint64(len(forged)) {
		t.Errorf("dead letters %+v, want the %d refused jobs", dlq, len(forged))
	}
	// JetStream's PubAck to a forged reply was not taken as an API call
	// (the streams above are intact), and the worker published nothing
	// it may not.
	for _, v := range ns.Violations() {
		t.Errorf("unexpected violation: %s", v)
	}
	runBothPaths(t, c)
}

// A tenant's runtime cannot read the kept results, so a DoDurable repeated
// within the duplicate window (which JetStream drops, and the client would
// answer from the results bucket) ends in TIMEOUT with a permissions
// violation; after the window the same job is published again and the
// worker answers it from its kept result, creating nothing twice.
func TestTenantRepeatsADurableJobAfterTheDuplicateWindow(t *testing.T) {
	t.Parallel()
	ns := workertest.StartRolesNATS(t)
	sim, exec := simExecutor(t)
	nc, err := worker.Connect(workerConn(ns))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	window := time.Second
	cfg := fastDurable
	cfg.DuplicateWindow = window
	w, err := worker.New(nc, exec, worker.WithDurable(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop(context.Background()) })

	var errs asyncErrors
	tenant := workertest.ConnectAs(t, ns.Server, deploy.TenantUser("a"), errs.option())
	c, _ := client.New(tenant)
	job := &sfblocks.InsertRequest{ID: "call-7", Object: "Task", Fields: map[string]any{"Subject": "Call"}}
	ctx := context.Background()
	first, err := c.DoDurable(ctx, sfblocks.Insert, job)
	if err != nil {
		t.Fatal(err)
	}
	published := time.Now()

	dctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if rep, err := c.DoDurable(dctx, sfblocks.Insert, job); rep != nil || !errors.Is(err, sfblocks.ErrTimeout) {
		t.Errorf("repeated within the window: %+v, %v; want TIMEOUT", rep, err)
	}
	if errs.violation("$JS.API.STREAM.INFO.KV_"+sfblocks.DefaultResultsBucket) == nil {
		t.Error("no permissions violation for the results bucket")
	}

	// The window runs on the server's clock and offers nothing to wait on.
	time.Sleep(time.Until(published.Add(window + 100*time.Millisecond)))
	again, err := c.DoDurable(ctx, sfblocks.Insert, job)
	if err != nil || again.ObjectID != first.ObjectID {
		t.Fatalf("repeated after the window: %+v, %v; want the first run's record %s", again, err, first.ObjectID)
	}
	if n := sim.Stats().RecordsCreated; n != 1 {
		t.Errorf("%d records created, want 1", n)
	}
}

// Permissions cannot refuse a reply subject the worker may publish to for
// its own work: a tenant naming the subject of another job's dead letter
// would replace it (one message per subject), one naming a key of the
// claims or results bucket would plant an entry there. Only the worker's
// reply-subject allow-list (WithReplySubjects, which always refuses $JS.,
// $KV., $O. and the worker's prefix) closes these.
func TestForgedReplySubjectsWithinTheWorkersRights(t *testing.T) {
	t.Parallel()
	ns := workertest.StartRolesNATS(t)
	_, exec := simExecutor(t)
	startWorker(t, workerConn(ns), exec)
	tenant := workertest.ConnectAs(t, ns.Server, deploy.TenantUser("a"))
	c, _ := client.New(tenant)
	ctx := context.Background()
	victim := sfblocks.JobIdentity{Block: sfblocks.Insert, ID: "victim-1"}
	if rep, _ := c.DoDurable(ctx, sfblocks.Insert, &sfblocks.InsertRequest{ID: victim.ID, Object: "Contact", Fields: map[string]any{"FirstName": "Ada"}}); rep == nil || rep.Status != sfblocks.StatusFailed {
		t.Fatalf("failing durable insert: %+v", rep)
	}
	op := workertest.ConnectAs(t, ns.Server, deploy.OperatorUser)
	opc, _ := client.New(op)
	workertest.WaitFor(t, 10*time.Second, "the victim's dead letter", func() bool {
		_, err := opc.GetDeadLetter(ctx, victim.ID)
		return err == nil
	})
	before := streamStates(t, ns)

	forged := []string{
		sfblocks.DLQSubject(sfblocks.DefaultPrefix, victim),
		"$KV." + worker.DefaultClaimsBucket + "." + victim.Key(),
		"$KV." + sfblocks.DefaultResultsBucket + "." + victim.Key(),
		"$O." + worker.DefaultPayloadsBucket + ".M.forged",
	}
	search := []byte(`{"query":"SELECT Id FROM Contact LIMIT 1"}`)
	for _, reply := range forged {
		if err := tenant.PublishRequest(sfblocks.Subject(sfblocks.DefaultPrefix, sfblocks.Search), reply, search); err != nil {
			t.Fatal(err)
		}
	}
	// A search sent after the forged ones has its answer once they were
	// taken; the forged replies are published as each job ends, and
	// nothing says when a reply that must never land did not: give them a
	// moment.
	if rep, err := c.Search(ctx, &sfblocks.SearchRequest{Query: "SELECT Id FROM Contact LIMIT 1"}); err != nil {
		t.Fatalf("search: %+v, %v", rep, err)
	}
	time.Sleep(500 * time.Millisecond)
	if after := streamStates(t, ns); !reflect.DeepEqual(after, before) {
		t.Errorf("forged replies changed the streams:\nbefore %+v\nafter  %+v", before, after)
	}
	if dl, err := opc.GetDeadLetter(ctx, victim.ID); err != nil || dl.Error.SalesforceCode != "REQUIRED_FIELD_MISSING" {
		t.Errorf("the victim's dead letter is now %+v, %v", dl, err)
	}
}
