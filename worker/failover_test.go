package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

func TestTransientErrors(t *testing.T) {
	t.Parallel()
	api := func(code jetstream.ErrorCode) error {
		return fmt.Errorf("wrapped: %w", &jetstream.APIError{ErrorCode: code, Code: 503})
	}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"no responders", nats.ErrNoResponders, true},
		{"no stream response", jetstream.ErrNoStreamResponse, true},
		{"timeout", nats.ErrTimeout, true},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), true},
		{"reconnecting", nats.ErrConnectionReconnecting, true},
		{"cluster unavailable", api(10008), true},
		{"not leader", api(10009), true},
		{"last sequence not ready", api(10163), true},
		{"duplicate message id in process", api(10158), true},
		{"stream offline", api(10118), true},
		{"key exists", jetstream.ErrKeyExists, false},
		{"key not found", jetstream.ErrKeyNotFound, false},
		{"wrong last sequence", api(10071), false},
		{"jetstream off", jetstream.ErrJetStreamNotEnabled, false},
		{"closed", nats.ErrConnectionClosed, false},
		{"cancelled", context.Canceled, false},
		{"other", errors.New("boom"), false},
	} {
		if got := transient(tc.err); got != tc.want {
			t.Errorf("transient(%s: %v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

func TestRetryJSNamesTheClusterStateAfterTheWindow(t *testing.T) {
	t.Parallel()
	tries := 0
	err := retryJS(context.Background(), 400*time.Millisecond, 50*time.Millisecond, "claiming the job", "KV_sfblocks_claims", func(context.Context) error {
		tries++
		return nats.ErrNoResponders
	})
	if !errors.Is(err, ErrNoJetStreamLeader) || !errors.Is(err, nats.ErrNoResponders) || !strings.Contains(err.Error(), "stream KV_sfblocks_claims") ||
		!strings.Contains(err.Error(), "cluster election in progress") || tries < 2 {
		t.Errorf("after %d tries: %v", tries, err)
	}
	tries = 0
	err = retryJS(context.Background(), time.Minute, 50*time.Millisecond, "x", "S", func(context.Context) error {
		tries++
		if tries < 3 {
			return nats.ErrTimeout
		}
		return jetstream.ErrKeyExists
	})
	if !errors.Is(err, jetstream.ErrKeyExists) || tries != 3 {
		t.Errorf("after %d tries: %v, want the real answer on the third", tries, err)
	}
}

// TestReplicasAreCheckedAgainstTheCluster: a single server takes one
// replica only, a three-node cluster three but not five, and each refusal
// says what to do.
func TestReplicasAreCheckedAgainstTheCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	t.Parallel()
	single := workertest.StartNATS(t)
	c := workertest.StartCluster(t, 3)
	for _, tc := range []struct {
		name     string
		nc       *nats.Conn
		replicas int
		want     string // "" when the start must succeed
	}{
		{"one server, R1", workertest.Connect(t, single), 1, ""},
		{"one server, R3", workertest.Connect(t, single), 3, "needs a JetStream cluster"},
		{"cluster, R5", c.Connect(t, 0), 5, "fewer than 5 JetStream servers up"},
		{"cluster, R3", c.Connect(t, 1), 3, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := New(tc.nc, newFake(false), WithDurable(DurableConfig{Replicas: tc.replicas, SetupTimeout: 20 * time.Second}))
			if err != nil {
				t.Fatal(err)
			}
			err = w.Start(context.Background())
			if err == nil {
				defer func() { _ = w.Stop(context.Background()) }()
			}
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Start: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "--replicas")):
				t.Fatalf("Start = %v, want an error saying %q and what to do with --replicas", err, tc.want)
			case tc.want == "" && tc.replicas > 1:
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				for _, stream := range []string{sfblocks.DefaultJobsStream, sfblocks.DefaultDLQStream, DefaultParkedStream,
					"KV_" + sfblocks.DefaultResultsBucket, "KV_" + sfblocks.DefaultAttemptsBucket, "KV_" + DefaultClaimsBucket} {
					if r, _, _, err := workertest.StreamReplicas(ctx, tc.nc, stream); err != nil || r != tc.replicas {
						t.Errorf("stream %s: %d replicas (%v), want %d", stream, r, err, tc.replicas)
					}
				}
			}
		})
	}
}

// TestFleetApplyChangesReplicas: on a cluster, an R1 fleet (and a shared
// bucket it does not own) is reported by fleet check against --replicas 3
// and moved to R3 by fleet apply, without losing an entry.
func TestFleetApplyChangesReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	t.Parallel()
	c := workertest.StartCluster(t, 3)
	nc := c.Connect(t, 0)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	shared, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "shared_tokens", History: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := shared.Put(ctx, "token.a", []byte("sealed")); err != nil {
		t.Fatal(err)
	}
	r1 := DurableConfig{SharedBuckets: []string{"shared_tokens", "missing_bucket"}}
	if _, err := ApplyFleet(ctx, js, "sfblocks", r1, 16); err != nil {
		t.Fatal(err)
	}
	r3 := r1
	r3.Replicas = 3
	diffs, err := CheckFleet(ctx, js, "sfblocks", r3, 16)
	if err != nil {
		t.Fatal(err)
	}
	var objects []string
	for _, d := range diffs {
		if d.Setting != "Replicas" || d.Fleet != "1" || d.Flags != "3" {
			t.Errorf("unexpected difference %s", d)
		}
		objects = append(objects, d.Object)
	}
	// Jobs, DLQ and parked streams; results, attempts, claims and the
	// shared bucket.
	if len(diffs) != 7 || !strings.Contains(strings.Join(objects, ","), "bucket shared_tokens") {
		t.Errorf("differences %v, want the 6 fleet objects and the shared bucket", objects)
	}
	changed, err := ApplyFleet(ctx, js, "sfblocks", r3, 16)
	if err != nil {
		t.Fatalf("apply: %v (changed %v)", err, changed)
	}
	if diffs, err := CheckFleet(ctx, js, "sfblocks", r3, 16); err != nil || len(diffs) != 0 {
		t.Errorf("after apply: differences %v, err %v", diffs, err)
	}
	if r, _, _, err := workertest.StreamReplicas(ctx, nc, "KV_shared_tokens"); err != nil || r != 3 {
		t.Errorf("shared bucket: %d replicas, %v", r, err)
	}
	if e, err := shared.Get(ctx, "token.a"); err != nil || string(e.Value()) != "sealed" {
		t.Errorf("shared bucket lost its entry: %v", err)
	}
}

// TestLedgerRidesThroughALeaderChange kills the node leading each ledger
// bucket in turn while the ledger works on it: every operation succeeds
// after the election, a claim retried across it is still this run's own
// (and only this run's), and nothing is written twice.
func TestLedgerRidesThroughALeaderChange(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for Raft elections with production timings")
	}
	t.Parallel()
	c := workertest.StartCluster(t, 3)
	nc := c.Connect(t, 0)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cfg, _ := DurableConfig{Replicas: 3}.withDefaults(16)
	f := &fleet{js: js, cfg: cfg, prefix: "sfblocks"}
	objs, err := f.ensureAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !objs.replicated {
		t.Fatal("an R3 fleet's ledger is not marked replicated: its reads would not go through the leaders")
	}
	l := &ledger{results: objs.results, attempts: objs.attempts, claims: objs.claims, timeout: time.Second, window: DefaultFailoverWindow, leaderReads: nc}

	for _, bucket := range []string{DefaultClaimsBucket, sfblocks.DefaultAttemptsBucket, sfblocks.DefaultResultsBucket} {
		stream := "KV_" + bucket
		leader := c.WaitStreamLeader(t, stream, 30*time.Second)
		c.WaitStreamCurrent(t, stream, 30*time.Second)
		key := sfblocks.JobIdentity{Block: sfblocks.Insert, ID: "job-" + bucket}.Key()
		start := time.Now()
		leader.Kill()
		switch bucket {
		case DefaultClaimsBucket:
			cl, err := l.claim(ctx, key, lease{Worker: "w1", Attempt: 1, TimeoutMS: 1000}, time.Minute)
			if err != nil || cl.revision == 0 || cl.holder != nil {
				t.Fatalf("claim across the election: %+v, %v", cl, err)
			}
			if stored, err := l.leaseStored(ctx, key, cl); err != nil || stored.IsZero() {
				t.Fatalf("the new lease's time: %v, %v", stored, err)
			}
			// The same worker and attempt claiming again (a second delivery)
			// is another run: it finds the lease held.
			again, err := l.claim(ctx, key, lease{Worker: "w1", Attempt: 1, TimeoutMS: 1000}, time.Minute)
			if err != nil || again.holder == nil || again.revision != 0 {
				t.Fatalf("second claim: %+v, %v; want the first's lease to hold", again, err)
			}
		case sfblocks.DefaultAttemptsBucket:
			if err := l.record(ctx, key, failureState{Attempts: 2}, DefaultFailoverWindow); err != nil {
				t.Fatal(err)
			}
			h, err := l.history(ctx, key)
			if err != nil || h.Attempts != 2 {
				t.Fatalf("history: %+v, %v", h, err)
			}
		case sfblocks.DefaultResultsBucket:
			data := []byte(`{"id":"x","status":"ok","object_id":"00T1","attempt":1}`)
			if prior, err := l.keep(ctx, key, "fp", data, true, false, DefaultFailoverWindow); err != nil || (prior != nil && prior.reply.ObjectID != "00T1") {
				t.Fatalf("keep: %+v, %v", prior, err)
			}
			k, err := l.result(ctx, key)
			if err != nil || k == nil || k.reply.ObjectID != "00T1" {
				t.Fatalf("result: %+v, %v", k, err)
			}
		}
		took := time.Since(start)
		next := c.WaitStreamLeader(t, stream, 30*time.Second, leader)
		t.Logf("%s: leader %s killed, %s leads; the ledger's operations completed %v after the kill", bucket, leader.Name(), next.Name(), took.Round(10*time.Millisecond))
		leader.Start()
		c.WaitReady(t, 30*time.Second)
	}
	// One entry per key: nothing was written twice.
	for _, kv := range []jetstream.KeyValue{objs.claims, objs.attempts, objs.results} {
		var st jetstream.KeyValueStatus
		var err error
		workertest.Eventually(30*time.Second, func() bool {
			sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer scancel()
			st, err = kv.Status(sctx)
			return err == nil
		})
		if err != nil {
			t.Errorf("bucket %s: %v", kv.Bucket(), err)
		} else if st.Values() != 1 {
			t.Errorf("bucket %s: %d values, want 1", kv.Bucket(), st.Values())
		}
	}
}

// TestReadyFollowsJetStream: a worker whose jobs stream loses its leader
// is not ready until the cluster elects another, then ready again by
// itself.
func TestReadyFollowsJetStream(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a Raft election with production timings")
	}
	t.Parallel()
	c := workertest.StartCluster(t, 3)
	w := startWorker(t, c.Connect(t, 0), newFake(false), WithDurable(DurableConfig{Replicas: 3, AckWait: 2 * time.Second}))
	workertest.WaitFor(t, 10*time.Second, "the worker ready", func() bool { return w.Ready() == nil })
	leader := c.WaitStreamLeader(t, sfblocks.DefaultJobsStream, 30*time.Second)
	if leader.Index() == 0 {
		// The worker's connection is on n1: keep it, kill another leader.
		if err := stepDown(t, c, sfblocks.DefaultJobsStream); err != nil {
			t.Fatal(err)
		}
		leader = c.WaitStreamLeader(t, sfblocks.DefaultJobsStream, 30*time.Second, c.Node(0))
	}
	killed := time.Now()
	leader.Kill()
	var notReady error
	workertest.WaitFor(t, 15*time.Second, "Ready to report JetStream unreachable", func() bool {
		notReady = w.Ready()
		return errors.Is(notReady, ErrJetStreamUnavailable)
	})
	if !strings.Contains(notReady.Error(), sfblocks.DefaultJobsStream) {
		t.Errorf("Ready = %v, want it to name the stream", notReady)
	}
	workertest.WaitFor(t, 30*time.Second, "the worker ready again by itself", func() bool { return w.Ready() == nil })
	t.Logf("leader %s killed: not ready (%v), ready again %v after the kill", leader.Name(), notReady, time.Since(killed).Round(10*time.Millisecond))
}

// stepDown asks the leader of stream to hand its leadership to another node.
func stepDown(t *testing.T, c *workertest.Cluster, stream string) error {
	t.Helper()
	nc := c.Connect(t, 1)
	_, err := nc.Request("$JS.API.STREAM.LEADER.STEPDOWN."+stream, nil, 5*time.Second)
	return err
}

// TestLeaderGetAnswersAsKVGet: the ledger's reads through the leader give
// what kv.Get gives: values, revisions, and "not found" for a key never
// written, deleted, purged or expired.
func TestLeaderGetAnswersAsKVGet(t *testing.T) {
	t.Parallel()
	ns := workertest.StartNATS(t)
	nc, js := workertest.JetStream(t, ns)
	ctx := t.Context()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "lg", LimitMarkerTTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	rev, err := kv.Put(ctx, "a", []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"del", "purge", "ttl"} {
		if _, err := kv.Create(ctx, k, []byte("x"), jetstream.KeyTTL(time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if err := kv.Delete(ctx, "del"); err != nil {
		t.Fatal(err)
	}
	if err := kv.Purge(ctx, "purge"); err != nil {
		t.Fatal(err)
	}
	e, err := leaderGet(ctx, nc, kv, "a")
	if err != nil || string(e.Value()) != "1" || e.Revision() != rev || e.Created().IsZero() {
		t.Errorf("leaderGet(a) = %+v, %v; want 1 at revision %d", e, err, rev)
	}
	workertest.WaitFor(t, 5*time.Second, "key ttl to expire", func() bool {
		_, err := kv.Get(ctx, "ttl")
		return errors.Is(err, jetstream.ErrKeyNotFound)
	})
	for _, k := range []string{"never", "del", "purge", "ttl"} {
		if _, err := leaderGet(ctx, nc, kv, k); !errors.Is(err, jetstream.ErrKeyNotFound) {
			t.Errorf("leaderGet(%s) = %v, want ErrKeyNotFound", k, err)
		}
	}
}

// TestBudgetBucketReplicas: the budget bucket is created with the
// worker's replicas, and a worker started later with other replicas keeps
// the bucket's own (changing it is 'fleet apply's job).
func TestBudgetBucketReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	t.Parallel()
	c := workertest.StartCluster(t, 3)
	nc := c.Connect(t, 0)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // stops the budgets' sharing
	for _, tc := range []struct {
		name          string
		first, second int
		want          int
	}{
		{"created R3, then a worker with R1", 3, 1, 3},
		{"created R1, then a worker with R3", 1, 3, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bucket := fmt.Sprintf("budget_r%d", tc.first)
			for _, r := range []int{tc.first, tc.second} {
				b, err := NewBudget(BudgetConfig{Bucket: bucket, Replicas: r})
				if err != nil {
					t.Fatal(err)
				}
				if err := b.Start(ctx, js); err != nil {
					t.Fatalf("Start with %d replicas: %v", r, err)
				}
			}
			rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
			defer rcancel()
			if r, _, _, err := workertest.StreamReplicas(rctx, nc, "KV_"+bucket); err != nil || r != tc.want {
				t.Errorf("bucket %s: %d replicas (%v), want %d", bucket, r, err, tc.want)
			}
		})
	}
}

// expiringKV is a claims bucket whose first Get finds the key gone: what a
// claim sees when the bucket elected a leader for longer than the new
// lease's TTL, between the Create that stored the lease and the read of
// its timestamp.
type expiringKV struct {
	jetstream.KeyValue
	expired atomic.Bool
}

func (kv *expiringKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	if kv.expired.CompareAndSwap(false, true) {
		if err := kv.KeyValue.Delete(ctx, key); err != nil {
			return nil, err
		}
		return nil, jetstream.ErrKeyNotFound
	}
	return kv.KeyValue.Get(ctx, key)
}

// TestLeaseGoneBeforeItWasRead: the server's time of a new lease is read
// only when a run record needs judging. A lease that ran out before that
// read (its bucket elected a leader for longer than its TTL), or that
// another worker holds by then, is reported as gone, so the job is
// retried; its time is never taken from another worker's lease.
func TestLeaseGoneBeforeItWasRead(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	objs := singleNodeFleet(t)
	claims := &expiringKV{KeyValue: objs.claims}
	l := &ledger{results: objs.results, attempts: objs.attempts, claims: claims, timeout: time.Second, window: time.Second}
	key := sfblocks.JobIdentity{Block: sfblocks.Insert, ID: "job-1"}.Key()
	c, err := l.claim(ctx, key, lease{Worker: "w1", Attempt: 1, TimeoutMS: 1000}, time.Minute)
	if err != nil || c.revision == 0 || c.holder != nil {
		t.Fatalf("claim = %+v, %v; want this run's new lease", c, err)
	}
	if _, err := l.leaseStored(ctx, key, c); !errors.Is(err, errLeaseGone) || !errors.Is(err, errLedger) {
		t.Fatalf("reading a lease that ran out: %v, want errLeaseGone", err)
	}
	// Another worker's lease in its place is not this one's either.
	other, err := l.claim(ctx, key, lease{Worker: "w2", Attempt: 1, TimeoutMS: 1000}, time.Minute)
	if err != nil || other.revision == 0 {
		t.Fatalf("second claim = %+v, %v", other, err)
	}
	if _, err := l.leaseStored(ctx, key, c); !errors.Is(err, errLeaseGone) {
		t.Fatalf("reading the lease after another worker took it: %v, want errLeaseGone", err)
	}
	if stored, err := l.leaseStored(ctx, key, other); err != nil || stored.IsZero() {
		t.Fatalf("the second worker's lease time: %v, %v", stored, err)
	}
}

// singleNodeFleet starts a NATS server and creates the fleet's streams and
// buckets on it with the default durable config.
func singleNodeFleet(t *testing.T) *fleetObjects {
	t.Helper()
	_, js := workertest.JetStream(t, workertest.StartNATS(t))
	cfg, _ := DurableConfig{}.withDefaults(16)
	objs, err := (&fleet{js: js, cfg: cfg, prefix: "sfblocks"}).ensureAll(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return objs
}
