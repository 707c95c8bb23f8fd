package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks/salesforce/breaker"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim/simdb"
	"github.com/sfblocks/sfblocks/worker"
	"github.com/sfblocks/sfblocks/worker/client"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

// These tests take Salesforce (the simulator) down under a steady load of
// durable Inserts served by an in-process `sfblocks serve`, and check what
// the README's "Failures, retries and dead letters" promises: the account's
// circuit breaker opens after a handful of failing calls, deliveries refused
// while it is open use no attempt, every job completes once Salesforce is
// back, none is lost, no record is made twice; and a synchronous caller
// meanwhile gets SALESFORCE_UNAVAILABLE at once instead of a timeout.

// outageCase is one outage scenario.
type outageCase struct {
	prefix string // job id prefix, unique per case
	mode   string // sfsim.OutageUnavailable or sfsim.OutageRefuse
	outage time.Duration
	// serveArgs are extra serve flags (e.g. a shorter breaker open time).
	serveArgs []string
	// openFor is the breaker's open time the serve flags give.
	openFor time.Duration
	rate    int           // durable jobs published per second
	before  time.Duration // load before the outage
	after   time.Duration // load after the breaker closed again
	// syncSearches is how many synchronous searches are timed while the
	// breaker is open; 0 for none.
	syncSearches int
	// ambiguousOK: a dropped connection leaves a plain create's outcome
	// unknown, so such jobs may be dead-lettered as ambiguous_create (the
	// documented behaviour) instead of completing.
	ambiguousOK bool
}

// outageJob is one published durable job.
type outageJob struct {
	id     string
	upsert bool
	phase  string // "before", "during" or "after" the outage
	// published is when the publish was acknowledged.
	published time.Time
}

// TestOutage503UnderDurableLoad runs a 30 s outage (every call answered 503
// SERVER_UNAVAILABLE, the token endpoint included) under ~40 durable
// Inserts a second with the default breaker settings (5 failures in a row,
// open 30 s, 3 probes), and times 200 synchronous searches while the
// breaker is open.
func TestOutage503UnderDurableLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a 30 s Salesforce outage under load (~45 s)")
	}
	t.Parallel()
	runOutage(t, outageCase{
		prefix: "o503-", mode: sfsim.OutageUnavailable, outage: 30 * time.Second, openFor: breaker.DefaultOpenTimeout,
		rate: 40, before: 3 * time.Second, after: 3 * time.Second, syncSearches: 200,
	})
}

// TestOutageRefusedConnectionsUnderDurableLoad runs a 5 s outage in which
// the simulator drops every connection without an answer, as a dead host
// would. The breaker's open time is shortened to match it (5 s instead of
// 30 s) only to keep the package's run time down: what is checked does not
// depend on the length. A dropped connection after the request was written
// leaves a plain create's outcome unknown: the plain creates among the few
// calls that failed before the breaker opened are reconciled once
// Salesforce answers again (nothing is found: the simulator dropped them
// unread) and created once their attempt can no longer land; upserts are
// retried.
func TestOutageRefusedConnectionsUnderDurableLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a 5 s Salesforce outage under load (~12 s)")
	}
	t.Parallel()
	runOutage(t, outageCase{
		prefix: "orefuse-", mode: sfsim.OutageRefuse, outage: 5 * time.Second,
		serveArgs: []string{"--breaker-open-for", "5s"}, openFor: 5 * time.Second,
		rate: 40, before: 2 * time.Second, after: 2 * time.Second, ambiguousOK: true,
	})
}

// TestOutageBeforeFirstTokenUnderDurableLoad starts a 5 s outage (503,
// the token endpoint included) before the worker has asked for any token:
// the first jobs' token requests fail, and must pass the breaker like data
// calls, so that the token endpoint too sees a handful of requests rather
// than one (or a retry loop) per job. The breaker's open time is shortened
// to 5 s, as above, only to keep the run short.
func TestOutageBeforeFirstTokenUnderDurableLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a 5 s Salesforce outage under load (~10 s)")
	}
	t.Parallel()
	runOutage(t, outageCase{
		prefix: "otoken-", mode: sfsim.OutageUnavailable, outage: 5 * time.Second,
		serveArgs: []string{"--breaker-open-for", "5s"}, openFor: 5 * time.Second,
		rate: 40, before: 0, after: 2 * time.Second,
	})
}

func runOutage(t *testing.T, tc outageCase) {
	t.Helper()
	ns := workertest.StartNATS(t)
	natsURL := ns.ClientURL()
	sim, cfg := fleetSim(t)
	// The whole org is down: the token endpoint too.
	sim.Faults().SetIncludeOAuth(true)
	// serve logs at info, which startServe reads the metrics address from;
	// failures show only its warnings. A short landing window: a create
	// whose connection dropped is tried again 2 s after its deadline (5 s)
	// instead of a minute. Inserts go one per call (--coalesce-calls 0):
	// the accounting below counts jobs per failing call, one to one, which
	// a Collections call carrying several jobs is not (each of its jobs
	// rightly uses an attempt; the blocks tests cover batches failing).
	metricsAddr, logs := startServe(t, append([]string{"--nats-url", natsURL, "--config", cfg,
		"--job-timeout", "5s", "--landing-window", "2s", "--coalesce-calls", "0"}, tc.serveArgs...)...)
	nc, c := fleetClient(t, ns)
	replyTo := nc.NewInbox()
	col := collect(t, nc, replyTo)
	createdBefore := sim.Stats().RecordsCreated

	var outageStart, outageEnd time.Time
	var phaseMu sync.Mutex
	phase := func(now time.Time) string {
		phaseMu.Lock()
		defer phaseMu.Unlock()
		switch {
		case outageStart.IsZero() || now.Before(outageStart):
			return "before"
		case now.Before(outageEnd):
			return "during"
		}
		return "after"
	}

	// The steady load: one job every 1/rate, alternating plain creates and
	// upserts on External_Id__c = the job id. Both carry the job id in
	// their Subject, so the simulator's records can be counted per job.
	var jobsMu sync.Mutex
	var jobs []outageJob
	stopLoad := make(chan struct{})
	loadDone := make(chan error, 1)
	// Without a load before the outage, the load starts once it began.
	loadGo := make(chan struct{})
	if tc.before > 0 {
		close(loadGo)
	}
	go func() {
		select {
		case <-loadGo:
		case <-stopLoad:
			loadDone <- nil
			return
		}
		tick := time.NewTicker(time.Second / time.Duration(tc.rate))
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stopLoad:
				loadDone <- nil
				return
			case <-tick.C:
			}
			id := fmt.Sprintf("%s%05d", tc.prefix, i)
			req := &sfblocks.InsertRequest{ID: id, Object: "Task", Fields: map[string]any{"Subject": "outage " + id}}
			upsert := i%2 == 1
			if upsert {
				req.ExternalID = &sfblocks.ExternalID{Field: "External_Id__c", Value: id}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := c.PublishDurable(ctx, sfblocks.Insert, req, client.WithReplyTo(replyTo))
			cancel()
			if err != nil {
				loadDone <- fmt.Errorf("publishing %s: %w", id, err)
				return
			}
			now := time.Now()
			jobsMu.Lock()
			jobs = append(jobs, outageJob{id: id, upsert: upsert, phase: phase(now), published: now})
			jobsMu.Unlock()
		}
	}()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			close(stopLoad)
			if err := <-loadDone; err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(stop)

	// Before: the worker answers jobs.
	time.Sleep(tc.before)
	if tc.before > 0 && col.answered() == 0 {
		t.Fatalf("no job answered in %v before the outage; warnings:\n%s", tc.before, warnings(logs))
	}

	// The outage.
	s0 := sim.Stats()
	phaseMu.Lock()
	outageStart = time.Now()
	outageEnd = outageStart.Add(tc.outage)
	phaseMu.Unlock()
	if err := sim.Faults().StartOutage(tc.mode, tc.outage, outageStart); err != nil {
		t.Fatal(err)
	}
	if tc.before == 0 {
		close(loadGo)
	}
	openedAt := waitBreaker(t, metricsAddr, breaker.StateOpen, outageStart.Add(10*time.Second), logs)
	openedAfter := openedAt.Sub(outageStart)

	// `sfblocks status` shows the breaker open (workers report every 5 s).
	statusOpen := waitStatusOpen(t, natsURL, outageEnd)

	// A synchronous caller gets SALESFORCE_UNAVAILABLE at once.
	var syncFigures string
	if tc.syncSearches > 0 {
		syncFigures = timeSyncSearches(t, c, sim, tc.syncSearches)
	}

	// The outage ends by itself; what the simulator saw while it lasted.
	time.Sleep(time.Until(outageEnd))
	s1 := sim.Stats()
	faultKind := "outage503"
	if tc.mode == sfsim.OutageRefuse {
		faultKind = "outageRefuse"
	}
	failingCalls := s1.FaultsInjected[faultKind] - s0.FaultsInjected[faultKind]
	apiCallsDuring := sumCounts(s1.APICalls) - sumCounts(s0.APICalls)
	tokenRequestsDuring := s1.TokenRequests - s0.TokenRequests

	// Recovery: the breaker probes after its open time and closes.
	closedAfter := waitBreaker(t, metricsAddr, breaker.StateClosed, outageStart.Add(tc.openFor+20*time.Second), logs).Sub(outageStart)
	time.Sleep(tc.after)
	stop()
	jobsMu.Lock()
	sent := slices.Clone(jobs)
	jobsMu.Unlock()

	// Every job is answered (or, should a reply have been lost, its
	// result is kept).
	ids := make([]string, len(sent))
	for i, j := range sent {
		ids[i] = j.id
	}
	fromKV := waitAnsweredOrKept(t, c, col, ids, 60*time.Second, logs)
	checkDrained(t, nc)

	dls, err := c.ListDeadLetters(context.Background(), client.DLQFilter{})
	if err != nil {
		t.Fatal(err)
	}
	deadLettered := map[string]*sfblocks.DeadLetter{}
	for _, dl := range dls {
		deadLettered[dl.JobID] = dl
	}

	// The records: one per job, counted by the job id in the Subject (and
	// by External_Id__c for the upserts).
	perSubject := countTasks(t, sim, "SELECT Id, Subject FROM Task WHERE Subject LIKE 'outage "+tc.prefix+"%'", "Subject", "outage ")
	perExternalID := countTasks(t, sim, "SELECT Id, External_Id__c FROM Task WHERE External_Id__c LIKE '"+tc.prefix+"%'", "External_Id__c", "")
	created := sim.Stats().RecordsCreated - createdBefore

	answered := col.answered()
	col.mu.Lock()
	defer col.mu.Unlock()
	var (
		phases                          = map[string]int{}
		replies, ok, retriedJobs, extra int
		maxAttempt                      int
		ambiguous                       int
		afterOpen                       int
	)
	for _, j := range sent {
		phases[j.phase]++
		rs := col.replies[j.id]
		replies += len(rs)
		if len(rs) != 1 {
			t.Errorf("job %s (%s the outage): %d replies, want 1", j.id, j.phase, len(rs))
			continue
		}
		r := rs[0]
		maxAttempt = max(maxAttempt, r.Attempt)
		if j.published.After(openedAt) {
			// Published once the breaker was open: every delivery until
			// it closed was refused unsent, and its probes succeed.
			afterOpen++
			if r.Attempt != 1 {
				t.Errorf("job %s, published after the breaker opened: attempt %d, want 1 (a delivery refused by the open breaker used an attempt)", j.id, r.Attempt)
			}
		}
		if r.Attempt > 1 {
			retriedJobs++
			extra += r.Attempt - 1
		}
		dl := deadLettered[j.id]
		switch {
		case r.Status == sfblocks.StatusOK && r.ObjectID != "" && dl == nil:
			ok++
			if perSubject[j.id] != 1 {
				t.Errorf("job %s (upsert %v, %s the outage): %d records, want 1", j.id, j.upsert, j.phase, perSubject[j.id])
			}
		case tc.ambiguousOK && !j.upsert && dl != nil && dl.Reason == sfblocks.ReasonAmbiguousCreate && r.Status == sfblocks.StatusFailed:
			// The simulator drops the connection before it reads the
			// record: nothing was created, and the operator checks
			// before replaying.
			ambiguous++
			if perSubject[j.id] != 0 {
				t.Errorf("ambiguous job %s: %d records, want 0 (the simulator dropped it unread)", j.id, perSubject[j.id])
			}
		default:
			t.Errorf("job %s (upsert %v, %s the outage): reply %+v, dead letter %+v; want status ok", j.id, j.upsert, j.phase, r, dl)
		}
		if j.upsert && perExternalID[j.id] != perSubject[j.id] {
			t.Errorf("upsert %s: %d records by External_Id__c, %d by Subject", j.id, perExternalID[j.id], perSubject[j.id])
		}
	}
	if len(col.bad) > 0 {
		t.Errorf("%d replies did not decode, e.g. %s", len(col.bad), col.bad[0])
	}
	if len(dls) != ambiguous {
		t.Errorf("%d dead letters, want %d (ambiguous creates only): %+v", len(dls), ambiguous, dls)
	}
	if created != int64(ok) {
		t.Errorf("simulator created %d records for %d successful jobs", created, ok)
	}

	// The breaker, not the jobs, met the outage: a handful of failing calls
	// opened it, then nothing reached the simulator until the outage ended
	// (the probes come after it), and no delivery refused while it was open
	// used an attempt: every extra attempt is one of those failing calls.
	const bound = breaker.DefaultConsecutiveFailures + breaker.DefaultHalfOpenProbes
	if failingCalls == 0 || failingCalls > bound {
		t.Errorf("the simulator saw %d failing calls during the outage, want 1..%d (the breaker's threshold plus its probes), not one per job", failingCalls, bound)
	}
	// The simulator counts token requests before it fails them: each one
	// during the outage is among the failing calls.
	if apiCallsDuring != 0 || tokenRequestsDuring > failingCalls {
		t.Errorf("during the outage the simulator served %d API calls and %d token requests (%d failing calls), want none served", apiCallsDuring, tokenRequestsDuring, failingCalls)
	}
	if total := sim.Stats().FaultsInjected[faultKind] - s0.FaultsInjected[faultKind]; total != failingCalls {
		t.Errorf("%d failing calls in all, %d during the outage: a probe or a job met the outage after it ended", total, failingCalls)
	}
	// Without failed token requests, each extra attempt (and each
	// ambiguous create) is one failing data call. A failed token request
	// fails every job waiting for that token, so it is not one to one.
	if tokenRequestsDuring == 0 && int64(extra+ambiguous) > failingCalls {
		t.Errorf("jobs used %d extra attempts and %d were ambiguous, for %d failing calls: deliveries refused by the open breaker used attempts", extra, ambiguous, failingCalls)
	}
	if maxAttempt >= worker.DefaultMaxAttempts {
		t.Errorf("a job needed %d attempts (the default allows %d): deliveries refused by the open breaker used attempts", maxAttempt, worker.DefaultMaxAttempts)
	}
	if phases["during"] == 0 || phases["after"] == 0 {
		t.Errorf("jobs by phase %v: the load did not span the outage", phases)
	}
	mf := scrapeMetrics(t, metricsAddr)
	opened := mf[`sfblocks_breaker_transitions_total{account="sim",to="open"}`]
	if opened != 1 {
		t.Errorf("the breaker opened %v times, want once (its probes come after the outage)", opened)
	}
	retried := sumMetric(mf, "sfblocks_durable_retried_total{")
	if int64(retried) != int64(extra) {
		t.Errorf("sfblocks_durable_retried_total %v, want %d (the extra attempts)", retried, extra)
	}

	t.Logf("%s outage of %v, breaker open for %v (defaults otherwise): opened %v after the outage began, closed %v after; status during the outage: %s",
		tc.mode, tc.outage, tc.openFor, openedAfter.Round(time.Millisecond), closedAfter.Round(time.Millisecond), statusOpen)
	t.Logf("jobs sent %d (%d before, %d during, %d after the outage; half plain creates, half upserts), answered %d (%d replies, %d read from the results bucket), ok %d, retried %d (jobs with attempt > 1: %d, max attempt %d; %d jobs published after the breaker opened, all attempt 1), dead-lettered %d (ambiguous_create %d), records created %d, breaker rejections %v",
		len(sent), phases["before"], phases["during"], phases["after"], answered, replies, fromKV, ok, int(retried), retriedJobs, maxAttempt, afterOpen, len(dls), ambiguous, created, mf[`sfblocks_breaker_rejected_total{account="sim"}`])
	t.Logf("simulator during the outage: %d failing calls (%s), %d API calls served, %d token requests (counted among the failing calls)", failingCalls, faultKind, apiCallsDuring, tokenRequestsDuring)
	if syncFigures != "" {
		t.Log(syncFigures)
	}
}

// timeSyncSearches sends n synchronous searches one after the other while
// the breaker is open, checks that each is answered SALESFORCE_UNAVAILABLE
// (retryable) and that none reached the simulator, and returns the latency
// figures. It asserts nothing on time (no timing assertions in tests).
func timeSyncSearches(t *testing.T, c *client.Client, sim *sfsim.Server, n int) string {
	t.Helper()
	before := simCalls(sim.Stats())
	lat := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		req := &sfblocks.SearchRequest{ID: fmt.Sprintf("sync-%d", i), Query: "SELECT Id, Name FROM Contact WHERE Phone = '$(ANI)'",
			Variables: map[string]any{"ANI": "+1 415 555 0100"}}
		start := time.Now()
		rep, err := c.Search(context.Background(), req)
		lat = append(lat, time.Since(start))
		var be *sfblocks.Error
		if rep == nil || rep.Error == nil || rep.Error.Code != sfblocks.CodeSalesforceUnavailable || !rep.Error.Retryable ||
			!errors.As(err, &be) || be.Code != sfblocks.CodeSalesforceUnavailable {
			t.Fatalf("sync search %d while the breaker is open: reply %+v, err %v; want SALESFORCE_UNAVAILABLE, retryable", i, rep, err)
		}
		if i == 0 && !strings.Contains(rep.Error.Message, "circuit breaker is open") {
			t.Errorf("the reply does not say the breaker is open: %q", rep.Error.Message)
		}
	}
	if after := simCalls(sim.Stats()); after != before {
		t.Errorf("the simulator saw %d calls during the %d synchronous searches, want none", after-before, n)
	}
	slices.Sort(lat)
	return fmt.Sprintf("%d synchronous searches while the breaker was open: all SALESFORCE_UNAVAILABLE retryable, 0 simulator calls; latency median %v, p99 %v, max %v",
		n, lat[n/2], lat[n*99/100-1], lat[n-1])
}

// simCalls is every request the simulator counted: API calls served,
// faults injected and token requests.
func simCalls(s sfsim.Stats) int64 {
	return sumCounts(s.APICalls) + sumCounts(s.FaultsInjected) + s.TokenRequests
}

func sumCounts(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// waitBreaker polls /metrics until the sim account's breaker is in state,
// and returns when it saw it.
func waitBreaker(t *testing.T, metricsAddr string, state breaker.State, deadline time.Time, logs *workertest.LogBuffer) time.Time {
	t.Helper()
	series := `sfblocks_breaker_state{account="sim"}`
	var mf map[string]float64
	var seen time.Time
	if !workertest.Eventually(time.Until(deadline), func() bool {
		mf = scrapeMetrics(t, metricsAddr)
		v, ok := mf[series]
		seen = time.Now()
		return ok && int(v) == int(state)
	}) {
		t.Fatalf("the breaker never became %s (%s = %v); warnings:\n%s", state, series, mf[series], warnings(logs))
	}
	return seen
}

// waitStatusOpen polls `sfblocks status` until it shows the sim account's
// breaker open, and returns its table line.
func waitStatusOpen(t *testing.T, natsURL string, deadline time.Time) string {
	t.Helper()
	ctx := context.Background()
	var out string
	var st []worker.AccountStatus
	if !workertest.Eventually(time.Until(deadline), func() bool {
		code, stdout, errOut := runCmd(t, ctx, "status", "--nats-url", natsURL, "--json")
		if code != 0 {
			t.Fatalf("status: exit %d: %s", code, errOut)
		}
		out, st = stdout, nil
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("status --json: %v\n%s", err, out)
		}
		return len(st) == 1 && st[0].Breaker == "open"
	}) {
		t.Fatalf("status never showed the breaker open before the outage ended: %s", out)
	}
	if st[0].BreakerOpenUntil == nil || !st[0].BreakerOpenUntil.After(time.Now()) {
		t.Errorf("status shows the breaker open without a future probe time: %+v", st[0])
	}
	code, table, _ := runCmd(t, ctx, "status", "--nats-url", natsURL)
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if code != 0 || len(lines) != 2 || !strings.Contains(lines[1], "open until") {
		t.Errorf("status table: exit %d\n%s", code, table)
	}
	return strings.Join(strings.Fields(lines[len(lines)-1]), " ")
}

// waitAnsweredOrKept waits until every id has a reply or a kept result,
// and returns how many were read from the results bucket: when no reply
// has come for 3 s, the missing jobs' kept results are read (a reply lost
// on the way still leaves the job's result in the bucket).
func waitAnsweredOrKept(t *testing.T, c *client.Client, col *collector, ids []string, limit time.Duration, logs *workertest.LogBuffer) int {
	t.Helper()
	fromKV := 0
	last, lastChange := col.answered(), time.Now()
	if !workertest.Eventually(limit, func() bool {
		if col.answered() >= len(ids) {
			return true
		}
		if n := col.answered(); n != last {
			last, lastChange = n, time.Now()
		}
		if time.Since(lastChange) > 3*time.Second {
			col.mu.Lock()
			var missing []string
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
				if err == nil && rep != nil {
					col.mu.Lock()
					col.replies[id] = append(col.replies[id], rep)
					col.mu.Unlock()
					fromKV++
				}
			}
			lastChange = time.Now()
		}
		return col.answered() >= len(ids)
	}) {
		t.Fatalf("only %d of %d jobs answered or kept within %v; warnings:\n%s", col.answered(), len(ids), limit, warnings(logs))
	}
	return fromKV
}

// warnings is serve's log lines at warn level and above.
func warnings(logs *workertest.LogBuffer) string {
	var b strings.Builder
	for _, line := range logs.Lines() {
		var e struct {
			Level string `json:"level"`
		}
		if json.Unmarshal([]byte(line), &e) == nil && (e.Level == "debug" || e.Level == "info") {
			continue
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

// countTasks runs a SOQL query on the simulator's database and counts the
// records per value of field, with trim cut off the front.
func countTasks(t *testing.T, sim *sfsim.Server, soql, field, trim string) map[string]int {
	t.Helper()
	res, err := sim.DB().Query(soql, simdb.QueryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, r := range res.Records {
		v, _ := r.Get(field)
		out[strings.TrimPrefix(fmt.Sprint(v), trim)]++
	}
	return out
}

// scrapeMetrics reads /metrics into series → value (series as printed,
// labels included).
func scrapeMetrics(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	res, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// sumMetric adds the values of every series starting with prefix.
func sumMetric(mf map[string]float64, prefix string) float64 {
	var n float64
	for k, v := range mf {
		if strings.HasPrefix(k, prefix) {
			n += v
		}
	}
	return n
}
