package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim/simdb"
	"github.com/sfblocks/sfblocks/worker/client"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

// TestFleetPlainInsertsExactlyOnce is the exactly-once promise under the
// faults that make duplicate records in production: 8,000 durable plain
// Inserts (no external_id) through three worker processes, against a
// simulator answering in 5–40 ms (uniform) that commits 2% of the creates
// and then drops the connection without an answer; part-way, one worker is
// SIGKILLed (or the NATS server is restarted). Salesforce's records are
// counted: every job must have exactly one. With the account's idempotency
// field every create is an upsert on the job's identity and nothing is
// ever ambiguous; without it, attempts whose outcome is unknown are
// reconciled, and what cannot be decided is dead-lettered as
// ambiguous_create with its candidates.
func TestFleetPlainInsertsExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs 4 × 8,000 inserts through 3 worker processes")
	}
	bin := fleetBinary(t)
	for _, tc := range []struct {
		fault string
		idem  bool
	}{{"kill", false}, {"kill", true}, {"restart", false}, {"restart", true}} {
		name := tc.fault + "/reconciled"
		if tc.idem {
			name = tc.fault + "/idempotency_field"
		}
		t.Run(name, func(t *testing.T) { runExactlyOnce(t, bin, tc.fault, tc.idem) })
	}
}

func runExactlyOnce(t *testing.T, bin, fault string, idem bool) {
	const n = 8000
	ns := workertest.StartRestartableNATS(t)
	var extra map[string]any
	if idem {
		extra = map[string]any{"idempotency_field": simdb.JobIDField}
	}
	sim, cfg := fleetSimWith(t, extra)
	if err := sim.Faults().Set(sfsim.FaultConfig{
		Latency:        sfsim.Latency{Distribution: sfsim.LatencyUniform, Min: sfsim.Duration(5 * time.Millisecond), Max: sfsim.Duration(40 * time.Millisecond)},
		CommitThenDrop: &sfsim.CommitThenDrop{Rate: 0.02},
	}); err != nil {
		t.Fatal(err)
	}
	nc, c := fleetClient(t, ns.Server())
	ws := startFleet(t, bin, ns.URL(), cfg, 3, nc)

	prefix := fmt.Sprintf("exo-%s-%v-", fault, idem)
	ids := jobIDs(prefix, n)
	subject := func(id string) string { return "call log " + id }
	replyTo := nc.NewInbox()
	col := collect(t, nc, replyTo)
	start := time.Now()
	published := make(chan error, 1)
	go func() {
		published <- publishAll(c, ids, replyTo, func(id string) *sfblocks.InsertRequest {
			return &sfblocks.InsertRequest{ID: id, Object: "Task",
				Fields: map[string]any{"Subject": subject(id), "Status": "Completed", "Priority": "Normal"}}
		})
	}()
	if !workertest.Eventually(120*time.Second, func() bool { return col.answered() >= n/4 }) {
		t.Fatalf("only %d jobs answered before the fault; logs:\n%s", col.answered(), fleetLogs(ws))
	}
	faultAt := col.answered()
	strike(t, fault, ws, ns)
	if err := <-published; err != nil {
		t.Fatal(err)
	}

	// Every job is answered, or (a reply lost in the restart) its result
	// is kept.
	fromKV := 0
	if !workertest.Eventually(240*time.Second, func() bool {
		col.mu.Lock()
		var missing []string
		for _, id := range ids {
			if len(col.replies[id]) == 0 {
				missing = append(missing, id)
			}
		}
		col.mu.Unlock()
		if len(missing) > 0 && len(missing) < 200 && time.Since(start) > 20*time.Second {
			for _, id := range missing {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				rep, err := c.Result(ctx, sfblocks.JobIdentity{Block: sfblocks.Insert, ID: id})
				cancel()
				if err == nil && rep != nil {
					col.mu.Lock()
					col.replies[id] = append(col.replies[id], rep)
					col.mu.Unlock()
					fromKV++
				}
			}
		}
		return col.answered() == n
	}) {
		t.Fatalf("only %d of %d jobs answered or kept; logs:\n%s", col.answered(), n, fleetLogs(ws))
	}
	took := time.Since(start)

	// What Salesforce holds, per job.
	records := recordsBySubject(t, sim, "SELECT Id, Subject FROM Task WHERE Subject LIKE 'call log "+prefix+"%'")
	dls, err := c.ListDeadLetters(context.Background(), client.DLQFilter{Block: sfblocks.Insert})
	if err != nil {
		t.Fatal(err)
	}
	ambiguous := map[string]*sfblocks.DeadLetter{}
	for _, dl := range dls {
		if strings.HasPrefix(dl.JobID, prefix) && dl.Reason == sfblocks.ReasonAmbiguousCreate {
			ambiguous[dl.JobID] = dl
		}
	}
	missing, dups, failed, twice := 0, 0, 0, 0
	col.mu.Lock()
	for _, id := range ids {
		rs, recs := col.replies[id], records[subject(id)]
		if len(recs) > 1 {
			dups += len(recs) - 1
			t.Errorf("job %s: %d records %v, want 1", id, len(recs), recs)
		}
		if dl := ambiguous[id]; dl != nil {
			// Undecided: the operator gets the candidates; nothing else
			// was created.
			if len(dl.Candidates) == 0 || len(recs) > len(dl.Candidates) {
				t.Errorf("ambiguous job %s: candidates %v, records %v", id, dl.Candidates, recs)
			}
			continue
		}
		if len(recs) == 0 {
			missing++
			t.Errorf("job %s: no record (replies %+v)", id, rs)
			continue
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
	col.mu.Unlock()
	if idem && len(ambiguous) > 0 {
		t.Errorf("%d ambiguous creates with the idempotency field, want 0", len(ambiguous))
	}
	if !idem && len(ambiguous) > n/200 {
		t.Errorf("%d ambiguous creates, want a handful at most", len(ambiguous))
	}
	checkDrained(t, nc)
	st := sim.Stats()
	t.Logf("%d plain inserts, 3 workers, latency 5–40 ms, %d commits whose answer was lost (%d records created unanswered); %s after %d answers; "+
		"all answered in %v (%.0f jobs/s; %d replies read from the results bucket, %d jobs answered twice): missing %d, duplicates %d, failed replies %d, ambiguous_create %d; "+
		"Salesforce API calls %d (%.3f per job: creates %d, upserts %d, reconciling queries %d, describes %d)",
		n, st.FaultsInjected["commitThenDrop"], st.RecordsCreatedUnanswered, fault, faultAt, took.Round(time.Millisecond), float64(n)/took.Seconds(),
		fromKV, twice, missing, dups, failed, len(ambiguous),
		sumCalls(st.APICalls), float64(sumCalls(st.APICalls))/n, st.APICalls["create"], st.APICalls["upsert"], st.APICalls["query"], st.APICalls["describe"])
}

func sumCalls(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// TestFleetSyncInsertsExactlyOnce is the exactly-once promise for
// synchronous Inserts that carry their own id, which a worker answers
// before it keeps their result: 3,000 plain Inserts from 48 callers, each
// retrying its job with the same id after any retryable failure or timeout,
// through three worker processes, against a simulator answering in 5–40 ms
// that commits 2% of the calls and then drops the connection; part-way,
// one worker is SIGKILLed with jobs in flight (answered and not yet kept,
// called and not yet answered), or the NATS server is restarted. Salesforce's records are counted: every job
// must have exactly one, and its last answer must name it.
func TestFleetSyncInsertsExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs 3,000 synchronous inserts through 3 worker processes")
	}
	t.Parallel()
	bin := fleetBinary(t)
	for _, fault := range []string{"kill", "restart"} {
		t.Run(fault, func(t *testing.T) { runSyncExactlyOnce(t, bin, fault) })
	}
}

func runSyncExactlyOnce(t *testing.T, bin, fault string) {
	ns := workertest.StartRestartableNATS(t)
	sim, cfg := fleetSim(t)
	if err := sim.Faults().Set(sfsim.FaultConfig{
		Latency:        sfsim.Latency{Distribution: sfsim.LatencyUniform, Min: sfsim.Duration(5 * time.Millisecond), Max: sfsim.Duration(40 * time.Millisecond)},
		CommitThenDrop: &sfsim.CommitThenDrop{Rate: 0.02},
	}); err != nil {
		t.Fatal(err)
	}
	nc, _ := fleetClient(t, ns.Server())
	ws := startFleet(t, bin, ns.URL(), cfg, 3, nc)

	const n, callers = 3000, 48
	ids := jobIDs("sync-exo-"+fault+"-", n)
	subject := func(id string) string { return "sync call log " + id }
	final := make([]*sfblocks.Reply, n)
	tries := make([]int, n)
	var answered atomic.Int64
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for i := range jobs {
				payload, _ := json.Marshal(sfblocks.InsertRequest{ID: ids[i], Object: "Task",
					Fields: map[string]any{"Subject": subject(ids[i]), "Status": "Completed", "Priority": "Normal"}})
				deadline := time.Now().Add(120 * time.Second)
				for time.Now().Before(deadline) {
					tries[i]++
					msg, err := nc.Request(sfblocks.Subject(sfblocks.DefaultPrefix, sfblocks.Insert), payload, 7*time.Second)
					if err != nil {
						continue // no answer (the worker was killed, or a reply was lost): send it again
					}
					var r sfblocks.Reply
					if json.Unmarshal(msg.Data, &r) != nil {
						continue
					}
					if r.Status == sfblocks.StatusFailed && r.Error != nil && r.Error.Retryable {
						time.Sleep(200 * time.Millisecond)
						continue
					}
					final[i] = &r
					break
				}
				answered.Add(1)
			}
		})
	}
	start := time.Now()
	go func() {
		for i := range ids {
			jobs <- i
		}
		close(jobs)
	}()
	if !workertest.Eventually(120*time.Second, func() bool { return answered.Load() >= n/4 }) {
		t.Fatalf("only %d jobs answered before the fault; logs:\n%s", answered.Load(), fleetLogs(ws))
	}
	faultAt := answered.Load()
	strike(t, fault, ws, ns)
	wg.Wait()
	took := time.Since(start)

	records := recordsBySubject(t, sim, "SELECT Id, Subject FROM Task WHERE Subject LIKE 'sync call log sync-exo-"+fault+"-%'")
	missing, dups, wrong, ambiguous, retried := 0, 0, 0, 0, 0
	for i, id := range ids {
		r, recs := final[i], records[subject(id)]
		if tries[i] > 1 {
			retried++
		}
		if len(recs) > 1 {
			dups += len(recs) - 1
			t.Errorf("job %s: %d records %v, want 1", id, len(recs), recs)
		}
		switch {
		case r == nil:
			t.Errorf("job %s: no final answer after %d tries", id, tries[i])
		case r.Status == sfblocks.StatusFailed && r.Error != nil && r.Error.SalesforceCode == "AMBIGUOUS_CREATE":
			// Undecided: dead-lettered with its candidates; nothing else was created.
			ambiguous++
		case len(recs) == 0:
			missing++
			t.Errorf("job %s: no record (answer %+v %+v)", id, r, r.Error)
		case r.Status != sfblocks.StatusOK || r.ObjectID != recs[0]:
			wrong++
			t.Errorf("job %s: answer %+v %+v, want ok with its record %s", id, r, r.Error, recs[0])
		}
	}
	if ambiguous > n/200 {
		t.Errorf("%d ambiguous creates, want a handful at most", ambiguous)
	}
	st := sim.Stats()
	t.Logf("%d synchronous plain inserts, %d callers, 3 workers, latency 5–40 ms, %d commits whose answer was lost; %s after %d answers; "+
		"all answered in %v (%d jobs sent more than once): missing %d, duplicates %d, wrong answers %d, ambiguous_create %d; "+
		"Salesforce API calls: creates %d, collections %d, reconciling queries %d",
		n, callers, st.FaultsInjected["commitThenDrop"], fault, faultAt, took.Round(time.Millisecond), retried, missing, dups, wrong, ambiguous,
		st.APICalls["create"], st.APICalls["collections"], st.APICalls["query"])
}

// strike brings the fault on: "kill" SIGKILLs the first worker, "restart"
// restarts the NATS server.
func strike(t *testing.T, fault string, ws []*fleetWorker, ns *workertest.RestartableNATS) {
	t.Helper()
	switch fault {
	case "kill":
		if err := ws[0].cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-ws[0].done
	case "restart":
		ns.Restart()
	}
}

// recordsBySubject returns the ids of the Tasks that query selects (Id and
// Subject), by Subject.
func recordsBySubject(t *testing.T, sim *sfsim.Server, query string) map[string][]string {
	t.Helper()
	res, err := sim.DB().Query(query, simdb.QueryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	records := map[string][]string{}
	for _, r := range res.Records {
		s, _ := r.Get("Subject")
		id, _ := r.Get("Id")
		records[fmt.Sprint(s)] = append(records[fmt.Sprint(s)], fmt.Sprint(id))
	}
	return records
}
