package blocks

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks/salesforce"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim/simdb"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

// recordingClient is a real client that remembers the record types of
// every Collections call it sends.
type recordingClient struct {
	*salesforce.Client
	mu      sync.Mutex
	calls   [][]string // record types of each Collections call, in order
	singles int
	gate    chan struct{}
}

func (r *recordingClient) note(records []salesforce.Record) {
	types := make([]string, len(records))
	for i, rec := range records {
		types[i], _ = rec["attributes"].(map[string]any)["type"].(string)
	}
	r.mu.Lock()
	r.calls = append(r.calls, types)
	r.mu.Unlock()
}

func (r *recordingClient) CreateCollection(ctx context.Context, records []salesforce.Record, allOrNone bool) ([]salesforce.SaveResult, error) {
	r.note(records)
	return r.Client.CreateCollection(ctx, records, allOrNone)
}

func (r *recordingClient) UpsertCollection(ctx context.Context, object, field string, records []salesforce.Record, allOrNone bool) ([]salesforce.SaveResult, error) {
	r.note(records)
	return r.Client.UpsertCollection(ctx, object, field, records, allOrNone)
}

// Create holds single creates until gate closes, when gate is set.
func (r *recordingClient) Create(ctx context.Context, object string, fields map[string]any) (*salesforce.SaveResult, error) {
	r.mu.Lock()
	r.singles++
	gate := r.gate
	r.mu.Unlock()
	if gate != nil {
		<-gate
	}
	return r.Client.Create(ctx, object, fields)
}

func (r *recordingClient) singleCreates() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.singles
}

func (r *recordingClient) collectionCalls() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]string(nil), r.calls...)
}

// coalesceSim starts a simulator answering in latency and an executor
// whose one account talks to it through a recordingClient, at most one
// call in flight so that what arrives during it rides the next one.
func coalesceSim(t *testing.T, latency time.Duration, opts ...Option) (*Executor, *sfsim.Server, *recordingClient) {
	t.Helper()
	s := workertest.StartSim(t, sfsim.Options{})
	if err := s.Faults().SetLatency(sfsim.Latency{Fixed: sfsim.Duration(latency)}); err != nil {
		t.Fatal(err)
	}
	c, err := salesforce.New(salesforce.StaticToken(s.IssueToken("").AccessToken, s.InstanceURL()))
	if err != nil {
		t.Fatal(err)
	}
	rc := &recordingClient{Client: c}
	opts = append([]Option{WithCoalescing(1, 0)}, opts...)
	return newTestExecutor(t, rc, opts...), s, rc
}

// runAll runs jobs at the same moment and returns their replies in order.
func runAll(t *testing.T, ex *Executor, block sfblocks.Block, jobs []m) []*sfblocks.Reply {
	t.Helper()
	replies := make([]*sfblocks.Reply, len(jobs))
	var wg sync.WaitGroup
	for i, job := range jobs {
		wg.Go(func() { replies[i] = handleJSON(t, ex, block, job) })
	}
	wg.Wait()
	return replies
}

func TestCoalescedInsertsGetTheirOwnOutcome(t *testing.T) {
	t.Parallel()
	ex, s, rc := coalesceSim(t, 150*time.Millisecond)
	type want struct {
		status sfblocks.Status
		sfCode string // the record's own statusCode
		field  string // named in the record's errors
	}
	var jobs []m
	var wants []want
	for i := range 40 {
		job := m{"id": fmt.Sprintf("j%d", i), "object": "Contact", "fields": m{"LastName": fmt.Sprintf("Coalesced %d", i)}}
		w := want{status: sfblocks.StatusOK}
		switch i % 8 {
		case 3:
			job["fields"] = m{"FirstName": "No last name"}
			w = want{status: sfblocks.StatusFailed, sfCode: "REQUIRED_FIELD_MISSING", field: "LastName"}
		case 5:
			job["fields"].(m)["No_Such_Field__c"] = "x"
			w = want{status: sfblocks.StatusFailed, sfCode: "INVALID_FIELD"}
		case 6:
			// Two records with one unique value: the first saves, the second
			// is its batch's DUPLICATE_VALUE.
			job["fields"].(m)["External_Id__c"] = "dup-1"
			if i > 6 {
				w = want{status: sfblocks.StatusFailed, sfCode: "DUPLICATE_VALUE", field: "External_Id__c"}
			}
		}
		jobs, wants = append(jobs, job), append(wants, w)
	}
	before := s.DB().Count("Contact")
	// jobs[6] goes first, alone, and saves dup-1; the rest ride one call, in
	// which the other dup-1 records are DUPLICATE_VALUE.
	order := append([]m{jobs[6]}, append(jobs[:6:6], jobs[7:]...)...)
	got := inOneBatch(t, ex, rc, order)
	replies := append(append(got[1:7:7], got[0]), got[7:]...)

	saved := 1 // jobs[6]
	for i, r := range replies {
		w := wants[i]
		if r.ID != jobs[i]["id"] || r.Status != w.status {
			t.Errorf("job %d: id %q status %s, want %s; error %+v", i, r.ID, r.Status, w.status, r.Error)
			continue
		}
		if w.status == sfblocks.StatusOK {
			if r.ObjectID == "" || r.Created == nil || !*r.Created {
				t.Errorf("job %d: object_id %q created %v", i, r.ObjectID, r.Created)
			}
			if i != 6 {
				saved++
			}
			rec, err := s.DB().Get("Contact", r.ObjectID, []string{"LastName"}, sfsim.LatestAPIVersion)
			if err != nil || get(rec, "LastName") != jobs[i]["fields"].(m)["LastName"] {
				t.Errorf("job %d: its object_id %s holds %v (%v), not its own record", i, r.ObjectID, rec, err)
			}
			continue
		}
		e := r.Error
		if e == nil || e.Code != sfblocks.CodeSalesforceError || e.SalesforceCode != w.sfCode || r.ResultCode != 400 {
			t.Errorf("job %d: error %+v, want SALESFORCE_ERROR %s result_code 400", i, e, w.sfCode)
			continue
		}
		// result_body is the record's own part of the Collections answer.
		var body salesforce.SaveResult
		if err := json.Unmarshal([]byte(r.ResultBody), &body); err != nil || body.Success || len(body.Errors) != 1 || body.Errors[0].StatusCode != w.sfCode {
			t.Errorf("job %d: result_body %s (%v), want the record's own failure", i, r.ResultBody, err)
		}
		if w.field != "" && !strings.Contains(r.ResultBody, w.field) {
			t.Errorf("job %d: result_body %s does not name %s", i, r.ResultBody, w.field)
		}
	}
	if got := s.DB().Count("Contact") - before; got != saved {
		t.Errorf("the org holds %d new contacts, want %d (one per successful job)", got, saved)
	}
	if st := s.Stats(); st.APICalls[sfsim.KindCollections] != 1 || st.APICalls[sfsim.KindCreate] != 1 {
		t.Errorf("40 inserts took %d Collections calls and %d single creates, want 1 and 1",
			st.APICalls[sfsim.KindCollections], st.APICalls[sfsim.KindCreate])
	}
}

func TestCoalescedUpsertsByExternalID(t *testing.T) {
	t.Parallel()
	ex, s, rc := coalesceSim(t, 150*time.Millisecond)
	// Half of the external IDs exist already: they are updated.
	existing := map[int]string{}
	for i := 0; i < 20; i += 2 {
		id, err := s.DB().Create("Case", map[string]any{"Subject": "before", "External_Id__c": fmt.Sprintf("ext-%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		existing[i] = id
	}
	var jobs []m
	for i := range 20 {
		jobs = append(jobs, m{"id": fmt.Sprintf("u%d", i), "object": "Case",
			"external_id": m{"field": "External_Id__c", "value": fmt.Sprintf("ext-%d", i)},
			"fields":      m{"Subject": fmt.Sprintf("after %d", i)}})
	}
	// A job with another field or object is never in the same call.
	jobs = append(jobs, m{"id": "other-object", "object": "Contact",
		"external_id": m{"field": "External_Id__c", "value": "ext-c"}, "fields": m{"LastName": "Other"}})
	replies := runAll(t, ex, sfblocks.Insert, jobs)
	for i, r := range replies[:20] {
		if r.Status != sfblocks.StatusOK || r.Created == nil {
			t.Fatalf("job %d: %+v %+v", i, r, r.Error)
		}
		id, was := existing[i]
		if *r.Created == was || was && r.ObjectID != id {
			t.Errorf("job %d: created %v object_id %s; existed %v as %s", i, *r.Created, r.ObjectID, was, id)
		}
		rec, err := s.DB().Get("Case", r.ObjectID, []string{"Subject"}, sfsim.LatestAPIVersion)
		if err != nil || get(rec, "Subject") != fmt.Sprintf("after %d", i) {
			t.Errorf("job %d: record %v %v", i, rec, err)
		}
	}
	if r := replies[20]; r.Status != sfblocks.StatusOK || !*r.Created {
		t.Errorf("other object: %+v", r)
	}
	for _, call := range rc.collectionCalls() {
		for _, typ := range call {
			if typ != call[0] {
				t.Fatalf("an upsert call mixed objects: %v", call)
			}
		}
	}
	if st := s.Stats(); st.APICalls[sfsim.KindCollectionsUpsert]+st.APICalls[sfsim.KindUpsert] > 5 {
		t.Errorf("21 upserts took %d calls", st.APICalls[sfsim.KindCollectionsUpsert]+st.APICalls[sfsim.KindUpsert])
	}
}

func get(r *simdb.Record, field string) any {
	if r == nil {
		return nil
	}
	v, _ := r.Get(field)
	return v
}

// chunks counts the runs of one type in a call, as Salesforce does.
func chunks(types []string) int {
	n := 0
	for i, typ := range types {
		if i == 0 || typ != types[i-1] {
			n++
		}
	}
	return n
}

func TestCoalescedCallsRespectTheTenChunkRule(t *testing.T) {
	t.Parallel()
	ex, s, rc := coalesceSim(t, 150*time.Millisecond)
	// Arrivals interleave five real objects and seven that the org lacks:
	// sent in arrival order they would make 60 chunks, which Salesforce
	// refuses; grouped by type, a call holds at most 10.
	real := []m{
		{"object": "Contact", "fields": m{"LastName": "Chunk"}},
		{"object": "Case", "fields": m{"Subject": "Chunk"}},
		{"object": "Task", "fields": m{"Subject": "Chunk"}},
		{"object": "Lead", "fields": m{"LastName": "Chunk", "Company": "Chunk Co"}},
		{"object": "Account", "fields": m{"Name": "Chunk"}},
	}
	var jobs []m
	for i := range 60 {
		job := m{"id": fmt.Sprintf("c%d", i)}
		if k := i % 12; k < len(real) {
			job["object"], job["fields"] = real[k]["object"], real[k]["fields"]
		} else {
			job["object"], job["fields"] = fmt.Sprintf("Missing%d__c", k), m{"Name": "x"}
		}
		jobs = append(jobs, job)
	}
	replies := runAll(t, ex, sfblocks.Insert, jobs)
	for i, r := range replies {
		if i%12 < len(real) {
			if r.Status != sfblocks.StatusOK {
				t.Errorf("job %d (%s): %+v", i, jobs[i]["object"], r.Error)
			}
			continue
		}
		// The org's own per-record answer for an unknown type, not a
		// refused request.
		if r.Status != sfblocks.StatusFailed || r.Error.Code != sfblocks.CodeSalesforceError || r.Error.SalesforceCode == "INVALID_BATCH_REQUEST" {
			t.Errorf("job %d (%s): %+v", i, jobs[i]["object"], r.Error)
		}
	}
	calls := rc.collectionCalls()
	if len(calls) < 2 {
		t.Fatalf("%d Collections calls: 12 types need at least 2", len(calls))
	}
	for _, call := range calls {
		if n := chunks(call); n > 10 {
			t.Errorf("a call had %d chunks: %v", n, call)
		}
	}
	if n := s.Stats().APICalls[sfsim.KindCollections]; n != int64(len(calls)) {
		t.Errorf("the org counted %d Collections calls, the client sent %d", n, len(calls))
	}
}

func TestCoalescedBatchFailureIsEachJobsOwn(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		faults      sfsim.FaultConfig
		code        sfblocks.Code
		retryable   bool
		maybeSaved  bool // the reply says the record may exist
		savedInOrg  bool // and it does
		jobDeadline time.Duration
	}{
		{name: "503", faults: sfsim.FaultConfig{Errors: []sfsim.ErrorRule{{Rate: 1, Status: 503}}},
			code: sfblocks.CodeSalesforceUnavailable, retryable: true},
		{name: "dropped connection", faults: sfsim.FaultConfig{Outage: &sfsim.Outage{Mode: sfsim.OutageRefuse, Until: time.Now().Add(time.Hour)}},
			code: sfblocks.CodeSalesforceUnavailable, retryable: true, maybeSaved: true},
		{name: "commit then drop", faults: sfsim.FaultConfig{CommitThenDrop: &sfsim.CommitThenDrop{Rate: 1}},
			code: sfblocks.CodeSalesforceUnavailable, retryable: true, maybeSaved: true, savedInOrg: true},
		{name: "timeout after commit", faults: sfsim.FaultConfig{CommitThenDrop: &sfsim.CommitThenDrop{Rate: 1, Mode: sfsim.CommitWithhold}},
			code: sfblocks.CodeTimeout, retryable: true, maybeSaved: true, savedInOrg: true, jobDeadline: 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ex, s, rc := coalesceSim(t, 100*time.Millisecond)
			tt.faults.Latency = sfsim.Latency{Fixed: sfsim.Duration(100 * time.Millisecond)}
			if err := s.Faults().Set(tt.faults); err != nil {
				t.Fatal(err)
			}
			var jobs []m
			for i := range 12 {
				job := m{"id": fmt.Sprintf("%s-%d", strings.ReplaceAll(tt.name, " ", "-"), i), "object": "Task",
					"fields": m{"Subject": fmt.Sprintf("Batch %s %d", tt.name, i), "Status": "Completed"}}
				if tt.jobDeadline > 0 {
					job["timeout_ms"] = tt.jobDeadline.Milliseconds()
					if i == 0 {
						// The pilot's call must end before the batch's
						// deadline for the batch to be sent at all.
						job["timeout_ms"] = tt.jobDeadline.Milliseconds() / 4
					}
				}
				jobs = append(jobs, job)
			}
			start := time.Now()
			replies := inOneBatch(t, ex, rc, jobs)
			for i, r := range replies {
				if r.Status != sfblocks.StatusFailed || r.Error.Code != tt.code || r.Error.Retryable != tt.retryable {
					t.Errorf("job %d: %s %+v, want %s retryable %v", i, r.Status, r.Error, tt.code, tt.retryable)
				}
				if got := MayHaveSaved(r); got != tt.maybeSaved {
					t.Errorf("job %d: may have saved %v, want %v", i, got, tt.maybeSaved)
				}
			}
			if len(rc.collectionCalls()) == 0 {
				t.Fatal("no job rode a Collections call")
			}
			if !tt.savedInOrg {
				return
			}
			// Each job finds its own record, once, as the worker's
			// reconciliation would: no duplicate, none lost.
			if err := s.Faults().Set(sfsim.FaultConfig{}); err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for i, job := range jobs {
				payload, _ := json.Marshal(job)
				j, err := ex.Decode(sfblocks.Insert, payload)
				if err != nil {
					t.Fatal(err)
				}
				rec, err := ex.Reconcile(context.Background(), j, start, time.Now())
				if err != nil || rec.ObjectID == "" || seen[rec.ObjectID] {
					t.Errorf("job %d: reconciled %+v, %v", i, rec, err)
				}
				seen[rec.ObjectID] = true
			}
			if created := s.Stats().RecordsCreated; created != int64(len(jobs)) {
				t.Errorf("the org created %d records for %d jobs", created, len(jobs))
			}
		})
	}
}

// inOneBatch runs jobs[0] alone, holds its call until every other job
// waits in the account's queue, then lets it go: the others ride one
// Collections call, whatever the machine's speed.
func inOneBatch(t *testing.T, ex *Executor, rc *recordingClient, jobs []m) []*sfblocks.Reply {
	t.Helper()
	gate := make(chan struct{})
	rc.mu.Lock()
	rc.gate = gate
	rc.mu.Unlock()
	replies := make([]*sfblocks.Reply, len(jobs))
	var wg sync.WaitGroup
	wg.Go(func() { replies[0] = handleJSON(t, ex, sfblocks.Insert, jobs[0]) })
	workertest.WaitFor(t, 5*time.Second, "the pilot insert in flight", func() bool { return rc.singleCreates() == 1 })
	for i := 1; i < len(jobs); i++ {
		wg.Go(func() { replies[i] = handleJSON(t, ex, sfblocks.Insert, jobs[i]) })
	}
	acct, err := ex.accounts.Lookup("")
	if err != nil {
		t.Fatal(err)
	}
	c := ex.coalescerFor(acct)
	workertest.WaitFor(t, 5*time.Second, "the others queued", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.queue) == len(jobs)-1
	})
	close(gate)
	wg.Wait()
	if calls := rc.collectionCalls(); len(calls) != 1 || len(calls[0]) != len(jobs)-1 {
		t.Fatalf("Collections calls %v, want one of %d records", calls, len(jobs)-1)
	}
	return replies
}

// blockingAPI answers searches when told to, counting calls.
type blockingAPI struct {
	fakeAPI
	mu       sync.Mutex
	searches int
	release  chan struct{}
}

func (b *blockingAPI) Query(ctx context.Context, soql string, _ ...salesforce.QueryOption) (*salesforce.QueryResult, error) {
	b.mu.Lock()
	b.searches++
	b.mu.Unlock()
	select {
	case <-b.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &salesforce.QueryResult{TotalSize: 1, Done: true, Records: []salesforce.Record{rec("Contact", "Id", "003000000000001AAA")}}, nil
}

func (b *blockingAPI) calls() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.searches
}

func TestIdenticalSearchesShareOneCall(t *testing.T) {
	t.Parallel()
	s := workertest.StartSim(t, sfsim.Options{})
	if err := s.Faults().SetLatency(sfsim.Latency{Fixed: sfsim.Duration(200 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	c, err := salesforce.New(salesforce.StaticToken(s.IssueToken("").AccessToken, s.InstanceURL()))
	if err != nil {
		t.Fatal(err)
	}
	metrics, err := NewMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	ex := newTestExecutor(t, c, WithMetrics(metrics))
	search := func(id, phone string, maxRecords int) m {
		return m{"id": id, "query": "SELECT Id, Name FROM Contact WHERE Phone = '$(phone)'",
			"variables": m{"phone": phone}, "max_records": maxRecords}
	}
	var jobs []m
	for i := range 50 {
		jobs = append(jobs, search(fmt.Sprintf("same-%d", i), "+1 415 555 0100", 10))
	}
	replies := runAll(t, ex, sfblocks.Search, jobs)
	for i, r := range replies {
		if r.Status != sfblocks.StatusOK || r.ID != fmt.Sprintf("same-%d", i) || r.First["Name"] != "Ada Byron" {
			t.Errorf("search %d: %+v", i, r)
		}
	}
	if n := s.Stats().APICalls[sfsim.KindQuery]; n != 1 {
		t.Errorf("50 identical searches made %d calls, want 1", n)
	}
	// Another value, or another max_records, is another search.
	before := s.Stats().APICalls[sfsim.KindQuery]
	replies = runAll(t, ex, sfblocks.Search, []m{
		search("a", "+1 415 555 0100", 10), search("b", "+1 415 555 0100", 5),
		search("c", "+1 415 555 0101", 10), search("d", "+1 415 555 0102", 10),
	})
	for _, r := range replies {
		if r.Status == sfblocks.StatusFailed {
			t.Errorf("%s: %+v", r.ID, r.Error)
		}
	}
	if n := s.Stats().APICalls[sfsim.KindQuery] - before; n != 4 {
		t.Errorf("4 different searches made %d calls, want 4", n)
	}
	// The replies do not share maps: one caller's changes stay its own.
	replies[0].First["Name"] = "changed"
	if r := handleJSON(t, ex, sfblocks.Search, search("e", "+1 415 555 0100", 10)); r.First["Name"] != "Ada Byron" {
		t.Errorf("a later search saw another reply's change: %v", r.First)
	}
	if got := testutil.ToFloat64(metrics.shared.WithLabelValues("main")); got != 49 {
		t.Errorf("search_shared_total %v, want 49", got)
	}
}

func TestSearchAfterInsertDoesNotJoinAnOlderCall(t *testing.T) {
	t.Parallel()
	api := &blockingAPI{release: make(chan struct{})}
	ex := newTestExecutor(t, api)
	job := m{"id": "s", "query": "SELECT Id FROM Contact WHERE LastName = 'Byron'"}
	older := make(chan *sfblocks.Reply)
	go func() { older <- handleJSON(t, ex, sfblocks.Search, job) }()
	workertest.WaitFor(t, 5*time.Second, "first search in flight", func() bool { return api.calls() == 1 })
	// A flow inserts, then searches: the search must see Salesforce after
	// the insert, not the answer to a call that began before it.
	if r := handleJSON(t, ex, sfblocks.Insert, m{"object": "Contact", "fields": m{"LastName": "Byron"}}); r.Status != sfblocks.StatusOK {
		t.Fatalf("insert: %+v", r.Error)
	}
	newer := make(chan *sfblocks.Reply)
	go func() { newer <- handleJSON(t, ex, sfblocks.Search, job) }()
	workertest.WaitFor(t, 5*time.Second, "second search in flight", func() bool { return api.calls() == 2 })
	close(api.release)
	for _, ch := range []chan *sfblocks.Reply{older, newer} {
		if r := <-ch; r.Status != sfblocks.StatusOK {
			t.Errorf("search: %+v", r.Error)
		}
	}
}

func TestSharedSearchSurvivesTheFirstCallersDeadline(t *testing.T) {
	t.Parallel()
	api := &blockingAPI{release: make(chan struct{})}
	ex := newTestExecutor(t, api)
	short := m{"id": "short", "query": "SELECT Id FROM Contact", "timeout_ms": 100}
	long := m{"id": "long", "query": "SELECT Id FROM Contact", "timeout_ms": 10000}
	first := make(chan *sfblocks.Reply)
	go func() { first <- handleJSON(t, ex, sfblocks.Search, short) }()
	workertest.WaitFor(t, 5*time.Second, "first search in flight", func() bool { return api.calls() == 1 })
	second := make(chan *sfblocks.Reply)
	go func() { second <- handleJSON(t, ex, sfblocks.Search, long) }()
	if r := <-first; r.Status != sfblocks.StatusFailed || r.Error.Code != sfblocks.CodeTimeout {
		t.Fatalf("short search: %+v", r)
	}
	// The shared call died of the first job's deadline; the second job,
	// which has time left, makes its own.
	workertest.WaitFor(t, 5*time.Second, "the second job's own call", func() bool { return api.calls() == 2 })
	close(api.release)
	if r := <-second; r.Status != sfblocks.StatusOK {
		t.Errorf("long search: %+v", r.Error)
	}
}

func TestCoalescingOff(t *testing.T) {
	t.Parallel()
	ex, s, rc := coalesceSim(t, 100*time.Millisecond, WithCoalescing(0, 0), WithSharedSearches(false))
	var jobs []m
	for i := range 10 {
		jobs = append(jobs, m{"object": "Task", "fields": m{"Subject": fmt.Sprintf("alone %d", i)}})
	}
	for _, r := range runAll(t, ex, sfblocks.Insert, jobs) {
		if r.Status != sfblocks.StatusOK {
			t.Fatalf("%+v", r.Error)
		}
	}
	searches := []m{{"query": "SELECT Id FROM Task"}, {"query": "SELECT Id FROM Task"}}
	runAll(t, ex, sfblocks.Search, searches)
	st := s.Stats()
	if len(rc.collectionCalls()) != 0 || st.APICalls[sfsim.KindCreate] != 10 || st.APICalls[sfsim.KindQuery] != 2 {
		t.Errorf("with coalescing off: %d collections, %d creates, %d queries; want 0, 10, 2",
			len(rc.collectionCalls()), st.APICalls[sfsim.KindCreate], st.APICalls[sfsim.KindQuery])
	}
}
