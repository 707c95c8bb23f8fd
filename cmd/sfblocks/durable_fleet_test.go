package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim/simdb"
	"github.com/sfblocks/sfblocks/worker/client"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

// These tests run real worker processes (the sfblocks binary built from this
// package) against one embedded NATS server and the simulator, and check the
// durable path's promise: every job answered, each record made once, nothing
// left in the stream, across a SIGKILLed worker and a NATS restart.

// fleetBinary builds the sfblocks binary into a temporary directory.
func fleetBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sfblocks")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// fleetWorker is one `sfblocks serve` process.
type fleetWorker struct {
	cmd  *exec.Cmd
	logs string
	done chan error
}

// startFleet starts n workers on natsURL with the accounts file cfg, one
// after the other: each once the ones before answer the micro PING (which
// they do only once their durable consumers are set up). One at a time
// because nats-server (v2.15.2, and v2.15.3 still) reads a stream's config
// without its lock when it creates a consumer (fileStore.ConsumerStore),
// while a concurrent update of that stream, from another worker's set-up,
// writes it: the race detector flags that in this test's embedded server.
func startFleet(t *testing.T, bin, natsURL, cfg string, n int, nc *nats.Conn) []*fleetWorker {
	t.Helper()
	ws := make([]*fleetWorker, 0, n)
	for i := range n {
		w := &fleetWorker{logs: filepath.Join(t.TempDir(), fmt.Sprintf("worker-%d.log", i)), done: make(chan error, 1)}
		logf, err := os.Create(w.logs)
		if err != nil {
			t.Fatal(err)
		}
		w.cmd = exec.Command(bin, "serve", "--nats-url", natsURL, "--config", cfg, "--metrics-addr=",
			"--data-dir", t.TempDir(), "--max-in-flight", "16", "--ack-wait", "2s", "--job-timeout", "5s", "--landing-window", "2s",
			"--log-level", "warn", "--log-format", "json", "--drain-timeout", "10s")
		w.cmd.Stdout, w.cmd.Stderr = logf, logf
		if err := w.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { w.done <- w.cmd.Wait(); logf.Close() }()
		ws = append(ws, w)
		t.Cleanup(func() { w.stop(t) })

		got := 0
		if !workertest.Eventually(30*time.Second, func() bool {
			if got = pingWorkers(t, nc); got == len(ws) {
				return true
			}
			for _, w := range ws {
				select {
				case err := <-w.done:
					t.Fatalf("worker exited at start: %v; logs:\n%s", err, fleetLogs(ws))
				default:
				}
			}
			return false
		}) {
			t.Fatalf("only %d of %d workers answered the micro PING within 30s; logs:\n%s", got, len(ws), fleetLogs(ws))
		}
	}
	return ws
}

// pingWorkers counts the sfblocks micro services answering a PING.
func pingWorkers(t *testing.T, nc *nats.Conn) int {
	t.Helper()
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.PublishRequest("$SRV.PING.sfblocks", inbox, nil); err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		if _, err := sub.NextMsg(200 * time.Millisecond); err != nil {
			return n
		}
		n++
	}
}

// stop sends SIGTERM (a graceful drain) and waits; it kills the worker if
// it does not exit within 20s. A worker already dead is left alone.
func (w *fleetWorker) stop(t *testing.T) {
	if w.cmd.ProcessState != nil {
		return
	}
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.done:
	case <-time.After(20 * time.Second):
		t.Errorf("worker %d did not drain within 20s; killing it", w.cmd.Process.Pid)
		_ = w.cmd.Process.Kill()
		<-w.done
	}
}

func fleetLogs(ws []*fleetWorker) string {
	var b strings.Builder
	for i, w := range ws {
		data, _ := os.ReadFile(w.logs)
		if len(data) > 4000 {
			data = data[len(data)-4000:]
		}
		fmt.Fprintf(&b, "--- worker %d:\n%s\n", i, data)
	}
	return b.String()
}

// fleetSim starts the simulator and writes an accounts file pointing at it
// (client credentials on its My Domain URL: http is accepted for loopback
// hosts).
func fleetSim(t *testing.T) (*sfsim.Server, string) {
	t.Helper()
	return fleetSimWith(t, nil)
}

// fleetSimWith is fleetSim with more settings on the account (such as its
// idempotency_field).
func fleetSimWith(t *testing.T, extra map[string]any) (*sfsim.Server, string) {
	t.Helper()
	sim := workertest.StartSim(t, sfsim.Options{DailyAPILimit: 10_000_000})
	account := map[string]any{
		"name": "sim", "default": true, "login_url": sim.MyDomainURL(), "flow": "client_credentials",
		"client_id": sfsim.DefaultClientID, "client_secret": sfsim.DefaultClientSecret, "api_version": sfsim.LatestAPIVersion,
	}
	for k, v := range extra {
		account[k] = v
	}
	data, _ := json.Marshal(map[string]any{"accounts": []map[string]any{account}})
	path := filepath.Join(t.TempDir(), "accounts.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return sim, path
}

// collector gathers the replies of durable jobs by job id.
type collector struct {
	mu      sync.Mutex
	replies map[string][]*sfblocks.Reply
	bad     []string
}

func collect(t *testing.T, nc *nats.Conn, subject string) *collector {
	t.Helper()
	c := &collector{replies: map[string][]*sfblocks.Reply{}}
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		var r sfblocks.Reply
		c.mu.Lock()
		defer c.mu.Unlock()
		if err := json.Unmarshal(m.Data, &r); err != nil || r.ID == "" {
			c.bad = append(c.bad, string(m.Data))
			return
		}
		c.replies[r.ID] = append(c.replies[r.ID], &r)
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = sub.SetPendingLimits(-1, -1)
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *collector) answered() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.replies)
}

// fleetJob is an idempotent insert: an upsert of a Task on External_Id__c
// = the job id, so a job run twice still makes one record.
func fleetJob(id string) *sfblocks.InsertRequest {
	return &sfblocks.InsertRequest{ID: id, Object: "Task",
		Fields:     map[string]any{"Subject": "fleet job " + id},
		ExternalID: &sfblocks.ExternalID{Field: "External_Id__c", Value: id}}
}

// publishAll publishes the jobs with 8 publishers, retrying a publish that
// failed (e.g. during a NATS restart; the same id is dropped as a duplicate
// if the first attempt was stored after all). It returns the first error
// left after 20 tries.
func publishAll(c *client.Client, ids []string, replyTo string, job func(id string) *sfblocks.InsertRequest) error {
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for p := 0; p < 8; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := p; i < len(ids); i += 8 {
				var err error
				for try := 0; try < 20; try++ {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					_, err = c.PublishDurable(ctx, sfblocks.Insert, job(ids[i]), client.WithReplyTo(replyTo))
					cancel()
					if err == nil {
						break
					}
					time.Sleep(250 * time.Millisecond)
				}
				if err != nil {
					errs <- fmt.Errorf("publishing %s: %w", ids[i], err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// waitAnswered waits until every id has a reply (or, with fallback, a kept
// result), polling: the replies arrive on their own.
func waitAnswered(t *testing.T, col *collector, ids []string, limit time.Duration, ws []*fleetWorker) {
	t.Helper()
	if !workertest.Eventually(limit, func() bool { return col.answered() >= len(ids) }) {
		t.Fatalf("only %d of %d jobs answered within %v; logs:\n%s", col.answered(), len(ids), limit, fleetLogs(ws))
	}
}

// checkReplies checks every job's replies: status ok, one object id.
// It returns how many jobs were answered more than once or with attempt > 1.
func checkReplies(t *testing.T, col *collector, ids []string) (redelivered int) {
	t.Helper()
	col.mu.Lock()
	defer col.mu.Unlock()
	if len(col.bad) > 0 {
		t.Errorf("%d replies did not decode, e.g. %s", len(col.bad), col.bad[0])
	}
	for _, id := range ids {
		rs := col.replies[id]
		if len(rs) == 0 {
			t.Errorf("job %s: no reply", id)
			continue
		}
		again := len(rs) > 1
		for _, r := range rs {
			if r.Status != sfblocks.StatusOK || r.ObjectID == "" {
				t.Errorf("job %s: reply %+v, want status ok with an object id", id, r)
			}
			if r.ObjectID != rs[0].ObjectID {
				t.Errorf("job %s: two object ids %s and %s", id, rs[0].ObjectID, r.ObjectID)
			}
			again = again || r.Attempt > 1
		}
		if again {
			redelivered++
		}
	}
	return redelivered
}

// checkRecords checks that the simulator holds exactly one Task per job.
func checkRecords(t *testing.T, sim *sfsim.Server, prefix string, ids []string, before int) {
	t.Helper()
	res, err := sim.DB().Query("SELECT Id, External_Id__c FROM Task WHERE External_Id__c LIKE '"+prefix+"%'", simdb.QueryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, r := range res.Records {
		v, _ := r.Get("External_Id__c")
		seen[fmt.Sprint(v)]++
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Errorf("job %s made %d records, want 1", id, seen[id])
		}
	}
	if res.TotalSize != len(ids) || sim.DB().Count("Task")-before != len(ids) {
		t.Errorf("simulator has %d job records (%d new Tasks), want %d", res.TotalSize, sim.DB().Count("Task")-before, len(ids))
	}
}

// checkDrained waits until the stream is empty and no consumer has pending
// or unacked jobs.
func checkDrained(t *testing.T, nc *nats.Conn) {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	var state string
	var leftovers []string
	if !workertest.Eventually(20*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		st, err := js.Stream(ctx, sfblocks.DefaultJobsStream)
		ok := err == nil
		state = fmt.Sprint(err)
		if !ok {
			return false
		}
		ss := st.CachedInfo().State
		state = fmt.Sprintf("stream msgs %d", ss.Msgs)
		settled := true // every consumer has nothing pending and nothing unacked
		floors := map[string]uint64{}
		for _, b := range sfblocks.Blocks() {
			ci, err := st.Consumer(ctx, string(b))
			if err != nil {
				state = err.Error()
				return false
			}
			info := ci.CachedInfo()
			state += fmt.Sprintf(", %s pending %d ack pending %d", b, info.NumPending, info.NumAckPending)
			settled = settled && info.NumPending == 0 && info.NumAckPending == 0
			floors[sfblocks.JobsSubject(sfblocks.DefaultPrefix, b)] = info.AckFloor.Stream
		}
		if !settled {
			return false
		}
		if ss.Msgs == 0 {
			return true
		}
		// A message its consumer has acked (its ack floor is past it) but
		// the server still stores: after a server restart the removal of a
		// message acked just before it can be lost (nats-server keeps the
		// consumer's ack state and the stream's messages apart). No worker
		// will get it again, so nothing waits on it; anything else left is
		// a failure.
		leftovers = leftovers[:0]
		for seq := ss.FirstSeq; seq <= ss.LastSeq && len(leftovers) <= 10; seq++ {
			m, err := st.GetMsg(ctx, seq)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				continue
			}
			if err != nil || seq > floors[m.Subject] {
				return false
			}
			leftovers = append(leftovers, fmt.Sprintf("seq %d (%s, id %q, ack floor %d)", seq, m.Subject, m.Header.Get(sfblocks.HeaderJobID), floors[m.Subject]))
		}
		return uint64(len(leftovers)) == ss.Msgs
	}) {
		t.Errorf("JetStream not drained after 20s: %s", state)
		return
	}
	if len(leftovers) > 0 {
		t.Logf("JetStream drained; the server still stores %d message(s) below their consumer's ack floor: %s", len(leftovers), strings.Join(leftovers, ", "))
	}
}

func jobIDs(prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s%05d", prefix, i)
	}
	return ids
}

// fleetClient connects to ns, reconnecting for as long as it takes (a
// test may restart the server).
func fleetClient(t *testing.T, ns *server.Server) (*nats.Conn, *client.Client) {
	t.Helper()
	nc := workertest.Connect(t, ns, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	c, err := client.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, c
}

func TestFleetSurvivesKilledWorker(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs 5,000 jobs through 3 worker processes")
	}
	t.Parallel()
	bin := fleetBinary(t)
	ns := workertest.StartNATS(t)
	sim, cfg := fleetSim(t)
	nc, c := fleetClient(t, ns)
	ws := startFleet(t, bin, ns.ClientURL(), cfg, 3, nc)

	const n = 5000
	ids := jobIDs("crash-", n)
	before := sim.DB().Count("Task")
	replyTo := nc.NewInbox()
	col := collect(t, nc, replyTo)
	start := time.Now()
	published := make(chan error, 1)
	go func() { published <- publishAll(c, ids, replyTo, fleetJob) }()

	// Kill one worker mid-run, with jobs in flight.
	if !workertest.Eventually(60*time.Second, func() bool { return col.answered() >= n/4 }) {
		t.Fatalf("only %d jobs answered before the kill; logs:\n%s", col.answered(), fleetLogs(ws))
	}
	killedAt := col.answered()
	if err := ws[0].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-ws[0].done
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	waitAnswered(t, col, ids, 75*time.Second-time.Since(start), ws)
	took := time.Since(start)

	redelivered := checkReplies(t, col, ids)
	checkRecords(t, sim, "crash-", ids, before)
	checkDrained(t, nc)
	col.mu.Lock()
	replies := 0
	for _, rs := range col.replies {
		replies += len(rs)
	}
	col.mu.Unlock()
	t.Logf("jobs sent %d, answered %d (%d replies), killed a worker after %d answers, redelivered %d, duration %v (%.0f jobs/s)",
		n, col.answered(), replies, killedAt, redelivered, took.Round(time.Millisecond), float64(n)/took.Seconds())
}

func TestFleetSurvivesNATSRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and restarts NATS under 2 worker processes")
	}
	t.Parallel()
	bin := fleetBinary(t)
	ns := workertest.StartRestartableNATS(t)
	sim, cfg := fleetSim(t)
	// The simulator answers in 2ms so that the run lasts across the restart.
	if err := sim.Faults().Set(sfsim.FaultConfig{Latency: sfsim.Latency{Fixed: sfsim.Duration(2 * time.Millisecond)}}); err != nil {
		t.Fatal(err)
	}
	nc, c := fleetClient(t, ns.Server())
	ws := startFleet(t, bin, ns.URL(), cfg, 2, nc)

	const n = 2000
	ids := jobIDs("restart-", n)
	before := sim.DB().Count("Task")
	replyTo := nc.NewInbox()
	col := collect(t, nc, replyTo)
	start := time.Now()
	published := make(chan error, 1)
	go func() { published <- publishAll(c, ids, replyTo, fleetJob) }()
	if !workertest.Eventually(60*time.Second, func() bool { return col.answered() >= n/4 }) {
		t.Fatalf("only %d jobs answered before the restart; logs:\n%s", col.answered(), fleetLogs(ws))
	}
	answeredAtRestart := col.answered()
	ns.Restart()
	restartedAt := time.Since(start)
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	publishedIn := time.Since(start)

	// Replies in flight during the restart may be lost (core NATS): a job
	// whose reply is missing must have its result kept.
	fromKV := 0
	if !workertest.Eventually(75*time.Second-time.Since(start), func() bool {
		missing := []string{}
		col.mu.Lock()
		for _, id := range ids {
			if len(col.replies[id]) == 0 {
				missing = append(missing, id)
			}
		}
		col.mu.Unlock()
		for _, id := range missing {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			rep, err := c.Result(ctx, sfblocks.JobIdentity{Block: sfblocks.Insert, ID: id})
			cancel()
			if err == nil && rep != nil && time.Since(start) > restartedAt+5*time.Second {
				// Kept but not received: its reply was lost in the restart.
				col.mu.Lock()
				col.replies[id] = append(col.replies[id], rep)
				col.mu.Unlock()
				fromKV++
			}
		}
		return col.answered() == n
	}) {
		t.Fatalf("only %d of %d jobs answered or kept after the restart; logs:\n%s", col.answered(), n, fleetLogs(ws))
	}
	took := time.Since(start)
	redelivered := checkReplies(t, col, ids)
	checkRecords(t, sim, "restart-", ids, before)
	checkDrained(t, nc)
	for i, w := range ws {
		select {
		case err := <-w.done:
			t.Errorf("worker %d exited during the restart: %v", i, err)
		default:
		}
	}
	t.Logf("jobs sent %d in %v, %d answered before the NATS restart at %v, all answered in %v (%d results read from the bucket: replies lost in the restart), redelivered %d",
		n, publishedIn.Round(time.Millisecond), answeredAtRestart, restartedAt.Round(time.Millisecond), took.Round(time.Millisecond), fromKV, redelivered)
}
