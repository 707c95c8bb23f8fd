package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/auth"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
	"github.com/sfblocks/sfblocks/worker/client"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

// TestClusterFleetLosesANode is sfblocks on a three-node JetStream cluster
// as it is deployed: every stream and bucket R3, three worker processes
// each connected first to another node, a steady durable load of plain
// Inserts (no external_id, no idempotency field) against the simulator at
// 5–40 ms. Part-way, the node leading the jobs stream goes down, and
// later the node leading the token bucket, just as every access token
// expires (so the fleet must refresh while that bucket elects a leader).
// "killed": each node dies without a goodbye and comes back later;
// "restarted": each is restarted by an operator (leaderships handed over).
// Every job must be answered (or its result kept, for a reply lost with
// the node), with exactly one record in Salesforce, and the fleet must
// make one token request per expiry.
func TestClusterFleetLosesANode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary, starts a three-node cluster and three workers, and waits for Raft elections")
	}
	bin := fleetBinary(t)
	for _, mode := range []string{"killed", "restarted"} {
		t.Run(mode, func(t *testing.T) { runClusterFleet(t, bin, mode) })
	}
}

// The steady load: clusterRate jobs a second, from before the first fault
// until clusterTail seconds after the fleet answered again after the
// second, so that both faults strike under load however long a recovery
// takes; at most clusterMaxJobs.
const (
	clusterRate    = 90
	clusterTail    = 5 * time.Second
	clusterMaxJobs = 20000
)

// timeline records when each job was published and answered.
type timeline struct {
	mu        sync.Mutex
	published map[string]time.Time
	answered  map[string]time.Time
	replies   map[string][]*sfblocks.Reply
}

func (tl *timeline) reply(r *sfblocks.Reply) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if _, ok := tl.answered[r.ID]; !ok {
		tl.answered[r.ID] = time.Now()
	}
	tl.replies[r.ID] = append(tl.replies[r.ID], r)
}

func (tl *timeline) count() int {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return len(tl.answered)
}

// recovery is how long after at the first job published after it was
// answered, and the longest time without any reply around it.
func (tl *timeline) recovery(at time.Time) (firstAnswer, longestGap time.Duration, ok bool) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var first time.Time
	var times []time.Time
	for id, p := range tl.published {
		a, answered := tl.answered[id]
		if answered {
			times = append(times, a)
		}
		if answered && p.After(at) && (first.IsZero() || a.Before(first)) {
			first = a
		}
	}
	if first.IsZero() {
		return 0, 0, false
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	prev := at
	for _, a := range times {
		if a.Before(at) {
			continue
		}
		if a.Sub(prev) > longestGap {
			longestGap = a.Sub(prev)
		}
		prev = a
		if a.After(first) {
			break
		}
	}
	return first.Sub(at), longestGap, true
}

// startClusterFleet starts n `sfblocks serve` processes with R3 settings,
// worker i given every node's URL starting with node i's (in that order),
// sharing one token key; one at a time, as startFleet does.
func startClusterFleet(t *testing.T, bin string, c *workertest.Cluster, cfg, tokenKey string, n int, nc *nats.Conn) []*fleetWorker {
	t.Helper()
	ws := make([]*fleetWorker, 0, n)
	for i := range n {
		w := &fleetWorker{logs: filepath.Join(t.TempDir(), fmt.Sprintf("worker-%d.log", i)), done: make(chan error, 1)}
		logf, err := os.Create(w.logs)
		if err != nil {
			t.Fatal(err)
		}
		w.cmd = exec.Command(bin, "serve", "--nats-url", strings.Join(c.URLsFrom(i), ","), "--nats-url-in-order", "--replicas", "3",
			"--config", cfg, "--metrics-addr=", "--data-dir", t.TempDir(), "--max-in-flight", "32", "--ack-wait", "10s",
			"--job-timeout", "5s", "--landing-window", "2s", "--log-level", testLogLevel(), "--log-format", "json", "--drain-timeout", "10s")
		w.cmd.Env = append(os.Environ(), auth.EnvTokenKey+"="+tokenKey)
		w.cmd.Stdout, w.cmd.Stderr = logf, logf
		if err := w.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { w.done <- w.cmd.Wait(); logf.Close() }()
		ws = append(ws, w)
		t.Cleanup(func() { w.stop(t) })
		if !workertest.Eventually(60*time.Second, func() bool { return pingWorkers(t, nc) == len(ws) }) {
			t.Fatalf("only %d of %d workers answered the micro PING within 60s; logs:\n%s", pingWorkers(t, nc), len(ws), fleetLogs(ws))
		}
	}
	return ws
}

// workersPerNode counts the workers' connections (named "sfblocks") on
// each running node.
func workersPerNode(t *testing.T, c *workertest.Cluster) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, nd := range c.Running() {
		cz, err := nd.Server().Connz(&server.ConnzOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, ci := range cz.Conns {
			if ci.Name == "sfblocks" {
				out[nd.Name()]++
			}
		}
	}
	return out
}

func runClusterFleet(t *testing.T, bin, mode string) {
	c := workertest.StartCluster(t, 3)
	sim, cfg := fleetSim(t)
	if err := sim.Faults().Set(sfsim.FaultConfig{Latency: sfsim.Latency{Distribution: sfsim.LatencyUniform,
		Min: sfsim.Duration(5 * time.Millisecond), Max: sfsim.Duration(40 * time.Millisecond)}}); err != nil {
		t.Fatal(err)
	}
	_, tokenKey, err := auth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	nc := c.Connect(t, 0)
	cl, err := client.New(nc, client.WithTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ws := startClusterFleet(t, bin, c, cfg, tokenKey, 3, nc)
	spread := workersPerNode(t, c)
	if len(spread) != 3 {
		t.Errorf("workers per node %v, want one on each of the three", spread)
	}
	jobsStream, tokenStream := sfblocks.DefaultJobsStream, "KV_"+auth.DefaultBucket
	for _, s := range []string{jobsStream, tokenStream, "KV_" + sfblocks.DefaultResultsBucket, "KV_" + sfblocks.DefaultAttemptsBucket, "KV_sfblocks_claims"} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r, _, _, err := workertest.StreamReplicas(ctx, nc, s)
		cancel()
		if err != nil || r != 3 {
			t.Fatalf("stream %s: %d replicas (%v), want 3", s, r, err)
		}
	}

	prefix := "cl-" + mode + "-"
	subject := func(id string) string { return "call log " + id }
	tl := &timeline{published: map[string]time.Time{}, answered: map[string]time.Time{}, replies: map[string][]*sfblocks.Reply{}}
	replyTo := nc.NewInbox()
	sub, err := nc.Subscribe(replyTo, func(m *nats.Msg) {
		var r sfblocks.Reply
		if err := json.Unmarshal(m.Data, &r); err == nil && r.ID != "" {
			tl.reply(&r)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = sub.SetPendingLimits(-1, -1)

	// The steady load: clusterRate jobs a second, each publish retried by
	// the client across a failover; a slow publish does not hold the
	// others up.
	var publishErrs atomic.Int64
	var firstErr atomic.Value
	var ids []string // published so far; guarded by tl.mu
	start := time.Now()
	stopLoad := make(chan struct{})
	published := make(chan struct{})
	go func() {
		defer close(published)
		var wg sync.WaitGroup
		tick := time.NewTicker(time.Second / clusterRate)
		defer tick.Stop()
	load:
		for i := range clusterMaxJobs {
			select {
			case <-stopLoad:
				break load
			case <-tick.C:
			}
			id := fmt.Sprintf("%s%05d", prefix, i)
			tl.mu.Lock()
			tl.published[id] = time.Now()
			ids = append(ids, id)
			tl.mu.Unlock()
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				_, err := cl.PublishDurable(ctx, sfblocks.Insert, &sfblocks.InsertRequest{ID: id, Object: "Task",
					Fields: map[string]any{"Subject": subject(id), "Status": "Completed", "Priority": "Normal"}}, client.WithReplyTo(replyTo))
				if err != nil {
					publishErrs.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			})
		}
		wg.Wait()
	}()

	type fault struct {
		what     string
		node     string
		at       time.Time
		recovery time.Duration
		gap      time.Duration
		leader   string
	}
	var faults []fault
	down := func(stream, what string, expire bool) {
		t.Helper()
		leader := c.WaitStreamLeader(t, stream, 30*time.Second)
		f := fault{what: what, node: leader.Name(), at: time.Now()}
		if mode == "killed" {
			leader.Kill()
		} else {
			leader.Restart()
		}
		if expire {
			sim.ExpireAllSessions()
		}
		if !workertest.Eventually(120*time.Second, func() bool {
			var ok bool
			f.recovery, f.gap, ok = tl.recovery(f.at)
			return ok
		}) {
			logs := fleetLogs(ws)
			dumpStalled(t, ws)
			t.Fatalf("no job published after %s %s of %s was answered within 120s; logs:\n%s", what, mode, leader.Name(), logs)
		}
		if nl := c.StreamLeader(stream); nl != nil {
			f.leader = nl.Name()
		}
		faults = append(faults, f)
		if mode == "killed" {
			// Down a little longer, then back: a cluster of three must be
			// whole again before it can lose another node.
			time.Sleep(3 * time.Second)
			leader.Start()
		}
		c.WaitReady(t, 60*time.Second)
		c.WaitHealthy(t, 120*time.Second)
	}

	workertest.WaitFor(t, 30*time.Second, "a steady load answered", func() bool { return tl.count() >= clusterRate*6 })
	down(jobsStream, "leader of the jobs stream", false)
	afterFirst := tl.count()
	workertest.WaitFor(t, 60*time.Second, "the load flowing again", func() bool { return tl.count() >= afterFirst+clusterRate*10 })
	down(tokenStream, "leader of the token bucket", true)
	time.Sleep(clusterTail)
	close(stopLoad)
	<-published
	publishedIn := time.Since(start)
	tl.mu.Lock()
	jobs := len(ids)
	tl.mu.Unlock()
	if n := publishErrs.Load(); n > 0 {
		t.Errorf("%d publishes failed, e.g. %v", n, firstErr.Load())
	}

	// Every job answered, or (its reply lost with a node) its result kept.
	fromKV := 0
	if !workertest.Eventually(120*time.Second, func() bool {
		var missing []string
		tl.mu.Lock()
		for _, id := range ids {
			if _, ok := tl.answered[id]; !ok {
				missing = append(missing, id)
			}
		}
		tl.mu.Unlock()
		if len(missing) > 0 && len(missing) < 300 && time.Since(start) > publishedIn+10*time.Second {
			for _, id := range missing {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				rep, err := cl.Result(ctx, sfblocks.JobIdentity{Block: sfblocks.Insert, ID: id})
				cancel()
				if err == nil && rep != nil {
					tl.reply(rep)
					fromKV++
				}
			}
		}
		return len(missing) == 0
	}) {
		t.Fatalf("only %d of %d jobs answered or kept; logs:\n%s", tl.count(), jobs, fleetLogs(ws))
	}
	took := time.Since(start)

	records := recordsBySubject(t, sim, "SELECT Id, Subject FROM Task WHERE Subject LIKE 'call log "+prefix+"%'")
	missing, dups, failed, twice := 0, 0, 0, 0
	tl.mu.Lock()
	for _, id := range ids {
		rs, recs := tl.replies[id], records[subject(id)]
		switch {
		case len(recs) == 0:
			missing++
			t.Errorf("job %s: no record (replies %+v)", id, rs)
			continue
		case len(recs) > 1:
			dups += len(recs) - 1
			t.Errorf("job %s: %d records %v, want 1", id, len(recs), recs)
		}
		for _, r := range rs {
			if r.Status != sfblocks.StatusOK || r.ObjectID != recs[0] {
				failed++
				t.Errorf("job %s: reply %+v %+v, want ok with its record %s", id, r, r.Error, recs[0])
				break
			}
		}
		if len(rs) > 1 {
			twice++
		}
	}
	tl.mu.Unlock()
	checkDrained(t, nc)
	for i, w := range ws {
		select {
		case err := <-w.done:
			t.Errorf("worker %d exited: %v", i, err)
		default:
		}
	}
	st := sim.Stats()
	// One token for the fleet at start, one for the expiry.
	if st.TokenRequests != 2 {
		t.Errorf("%d token requests, want 2: one at start and one for the fleet at the forced expiry", st.TokenRequests)
	}
	var b strings.Builder
	for _, f := range faults {
		fmt.Fprintf(&b, "; %s %s (%s): first job published after it answered in %v (longest gap between replies %v), %s leads it",
			f.what, mode, f.node, f.recovery.Round(10*time.Millisecond), f.gap.Round(10*time.Millisecond), f.leader)
	}
	t.Logf("%d plain inserts at %d/s, 3 workers on nodes %v, R3, latency 5–40 ms%s; all answered in %v (%d replies read from the results bucket, %d jobs answered twice): "+
		"missing %d, duplicate records %d, failed replies %d, failed publishes %d; token requests %d for 1 expiry (1 at start); Salesforce API calls %d (%.3f per job)",
		jobs, clusterRate, spread, b.String(), took.Round(time.Millisecond), fromKV, twice, missing, dups, failed, publishErrs.Load(),
		st.TokenRequests, sumCalls(st.APICalls), float64(sumCalls(st.APICalls))/float64(jobs))
}

// testLogLevel is the fleet workers' log level: warn, unless
// SFBLOCKS_TEST_LOG_LEVEL says otherwise (info or debug, to see every
// job's outcome when chasing a failure).
func testLogLevel() string {
	if l := os.Getenv("SFBLOCKS_TEST_LOG_LEVEL"); l != "" {
		return l
	}
	return "warn"
}

// dumpStalled is for a fleet that stopped answering: it makes each worker
// write its goroutines' stacks to its log (SIGQUIT; the worker exits) and,
// when SFBLOCKS_TEST_KEEP_LOGS names a directory, copies the whole logs
// there, since the test's own output keeps only their tails.
func dumpStalled(t *testing.T, ws []*fleetWorker) {
	t.Helper()
	for _, w := range ws {
		if w.cmd.ProcessState == nil {
			_ = w.cmd.Process.Signal(syscall.SIGQUIT)
		}
	}
	for _, w := range ws {
		select {
		case err := <-w.done:
			w.done <- err // for the cleanup's stop
		case <-time.After(10 * time.Second):
		}
	}
	dir := os.Getenv("SFBLOCKS_TEST_KEEP_LOGS")
	if dir == "" {
		return
	}
	dir = filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+"-"+time.Now().Format("150405"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("keeping the logs: %v", err)
		return
	}
	for i, w := range ws {
		data, _ := os.ReadFile(w.logs)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("worker-%d.log", i)), data, 0o644); err != nil {
			t.Logf("keeping the logs: %v", err)
		}
	}
	t.Logf("the workers' whole logs, with their stacks, are in %s", dir)
}
