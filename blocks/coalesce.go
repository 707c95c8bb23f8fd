package blocks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks/salesforce"
)

// Coalescing spends a fraction of an API request per Insert when Inserts
// arrive together. Salesforce counts an sObject Collections request (up to
// 200 records) as one API request, as it counts a single create. So the
// Inserts of one account that wait at the same moment go to Salesforce as
// one Collections call: creates as POST /composite/sobjects (records of up
// to 10 types, grouped by type, since each run of one type is a chunk and
// a request takes 10), upserts as PATCH /composite/sobjects/{Object}/
// {Field} (one object and external ID field per call). A call leaves as
// soon as there is work and fewer than the account's cap of calls are in
// flight; what arrives meanwhile rides the next one. An idle worker adds
// no delay: a lone Insert goes out at once, as the single create or upsert
// it always was.
//
// Each job gets its own record's outcome: its id, or its record's errors
// as the *salesforce.APIError a single call would have given (status 400,
// the record's part of the answer as the body). A failure of the whole
// call (5xx, a dropped connection, a timeout) is each job's own failure,
// exactly as if it had gone alone, so retries and the reconciliation of
// creates that may have saved work per job.

// DefaultCoalesceCalls is the most Collections calls one account has in
// flight per worker; [WithCoalescing] changes it, 0 turns coalescing off.
// Eight lets a burst of 1000 Inserts leave in one wave (the first call
// often carries a lone Insert that arrived before the rest; five carry
// 200): with four, 400 of them waited for a call to come back.
const DefaultCoalesceCalls = 8

// collectionAPI is what coalescing needs of an account's client;
// *salesforce.Client has it. An account whose client lacks it is not
// coalesced.
type collectionAPI interface {
	CreateCollection(ctx context.Context, records []salesforce.Record, allOrNone bool) ([]salesforce.SaveResult, error)
	UpsertCollection(ctx context.Context, object, field string, records []salesforce.Record, allOrNone bool) ([]salesforce.SaveResult, error)
}

// maxChunks is the most runs of one record type a Collections request may
// hold.
const maxChunks = 10

// saveReq is one Insert waiting for its call.
type saveReq struct {
	ctx      context.Context
	object   string
	extField string // "" for a create
	extValue string
	fields   map[string]any
	done     chan saveOutcome // buffered: the call never waits for the job
}

type saveOutcome struct {
	res *salesforce.SaveResult
	err error
}

// coalescer batches one account's Inserts.
type coalescer struct {
	account  string
	api      SalesforceAPI
	coll     collectionAPI
	maxCalls int
	gather   time.Duration
	metrics  *Metrics

	mu       sync.Mutex
	queue    []*saveReq
	inFlight int
	timer    *time.Timer   // armed while a batch gathers
	latency  time.Duration // moving average of the account's calls
}

// wait is how long a batch gathers while a call is in flight: a quarter
// of the account's recent call latency (company is worth little delay to
// a fast org, much to a slow one), at most gather.
func (c *coalescer) waitLocked() time.Duration {
	if c.latency == 0 {
		return min(c.gather, time.Millisecond)
	}
	return min(c.gather, c.latency/4)
}

// coalescerFor returns account's coalescer, nil when coalescing is off or
// the account's client cannot send Collections.
func (e *Executor) coalescerFor(acct Account) *coalescer {
	if e.coalesceCalls <= 0 {
		return nil
	}
	coll, ok := acct.API.(collectionAPI)
	if !ok {
		return nil
	}
	if c, ok := e.coalescers.Load(acct.Name); ok {
		return c.(*coalescer)
	}
	c, _ := e.coalescers.LoadOrStore(acct.Name, &coalescer{account: acct.Name, api: acct.API, coll: coll,
		maxCalls: e.coalesceCalls, gather: e.gather, metrics: e.metrics})
	return c.(*coalescer)
}

// save sends one record with the others waiting at the same moment, and
// returns its own outcome. When ctx ends first, the job gives up waiting;
// a call that already carries its record goes on (a create may still be
// saved, which the caller's reconciliation finds), but no call made after
// that carries it.
func (c *coalescer) save(ctx context.Context, r *saveReq) (*salesforce.SaveResult, error) {
	r.ctx = ctx
	r.done = make(chan saveOutcome, 1)
	c.mu.Lock()
	c.queue = append(c.queue, r)
	switch {
	case c.inFlight == 0 || c.gather == 0 || len(c.queue) >= salesforce.MaxCollectionRecords:
		// Idle, or a full batch: no reason to wait.
		c.dispatchLocked()
	case c.timer == nil:
		c.timer = time.AfterFunc(c.waitLocked(), func() {
			c.mu.Lock()
			c.timer = nil
			c.dispatchLocked()
			c.mu.Unlock()
		})
	}
	c.mu.Unlock()
	select {
	case o := <-r.done:
		return o.res, o.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// dispatchLocked sends calls while there is work and room for them.
func (c *coalescer) dispatchLocked() {
	for c.inFlight < c.maxCalls && len(c.queue) > 0 {
		batch := c.takeLocked()
		if len(batch) == 0 {
			continue
		}
		c.inFlight++
		go c.call(batch)
	}
}

// takeLocked takes the next call's records from the queue, in arrival
// order: the first waiting Insert decides whether the call creates (then
// creates of up to maxChunks types join it) or upserts (then upserts of the
// same object and field join it).
func (c *coalescer) takeLocked() []*saveReq {
	for len(c.queue) > 0 && c.queue[0].ctx.Err() != nil {
		c.queue = c.queue[1:] // gave up waiting: never sent
	}
	if len(c.queue) == 0 {
		return nil
	}
	first := c.queue[0]
	batch := []*saveReq{first}
	types := map[string]bool{first.object: true}
	rest := c.queue[:0:0]
	for _, r := range c.queue[1:] {
		if r.ctx.Err() != nil {
			continue // gave up waiting: never sent
		}
		fits := len(batch) < salesforce.MaxCollectionRecords
		switch {
		case !fits:
		case first.extField != "":
			fits = r.extField == first.extField && r.object == first.object
		default:
			fits = r.extField == "" && (types[r.object] || len(types) < maxChunks)
		}
		if !fits {
			rest = append(rest, r)
			continue
		}
		types[r.object] = true
		batch = append(batch, r)
	}
	c.queue = rest
	if first.extField == "" {
		// One chunk per type: records of a type together, in arrival order.
		order := map[string]int{}
		for _, r := range batch {
			if _, ok := order[r.object]; !ok {
				order[r.object] = len(order)
			}
		}
		slices.SortStableFunc(batch, func(a, b *saveReq) int { return order[a.object] - order[b.object] })
	}
	return batch
}

// call sends one batch and hands each job its outcome, then lets the next
// call go. It runs under the first job's context values and ends at the
// earliest deadline of the batch, so no call outlives the deadline any of
// its jobs recorded (which the exactly-once reconciliation relies on).
func (c *coalescer) call(batch []*saveReq) {
	start := time.Now()
	defer func() {
		took := time.Since(start)
		c.mu.Lock()
		c.inFlight--
		if c.latency == 0 {
			c.latency = took
		} else {
			c.latency = (7*c.latency + took) / 8
		}
		c.dispatchLocked()
		c.mu.Unlock()
	}()
	var earliest time.Time
	for _, r := range batch {
		if d, ok := r.ctx.Deadline(); ok && (earliest.IsZero() || d.Before(earliest)) {
			earliest = d
		}
	}
	ctx := context.WithoutCancel(batch[0].ctx)
	if !earliest.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, earliest)
		defer cancel()
	}
	defer func() {
		if p := recover(); p != nil {
			// As in Run: a panicking client must not take the worker down;
			// each job learns of it as its own failure.
			for _, r := range batch {
				r.done <- saveOutcome{err: &sfblocks.Error{Code: sfblocks.CodeInternal,
					Message: "internal error while saving the record (a bug in sfblocks; the worker keeps running)",
					Err:     fmt.Errorf("panic: %v", p)}}
			}
		}
	}()
	c.metrics.insertCall(c.account, len(batch))
	if len(batch) > 1 && trace.SpanFromContext(batch[0].ctx).IsRecording() {
		ctx = traceBatch(ctx, batch)
	}
	if len(batch) == 1 {
		// Alone: the single call it always was.
		r := batch[0]
		var res *salesforce.SaveResult
		var err error
		if r.extField != "" {
			res, err = c.api.Upsert(ctx, r.object, r.extField, r.extValue, r.fields)
		} else {
			res, err = c.api.Create(ctx, r.object, r.fields)
		}
		r.done <- saveOutcome{res: res, err: err}
		return
	}
	records := make([]salesforce.Record, len(batch))
	for i, r := range batch {
		rec := make(salesforce.Record, len(r.fields)+2)
		for k, v := range r.fields {
			rec[k] = v
		}
		rec["attributes"] = map[string]any{"type": r.object}
		if r.extField != "" {
			rec[r.extField] = r.extValue
		}
		records[i] = rec
	}
	var results []salesforce.SaveResult
	var err error
	if first := batch[0]; first.extField != "" {
		results, err = c.coll.UpsertCollection(ctx, first.object, first.extField, records, false)
	} else {
		results, err = c.coll.CreateCollection(ctx, records, false)
	}
	if err == nil && len(results) != len(batch) {
		err = &salesforce.APIError{StatusCode: http.StatusOK, ErrorCode: salesforce.CodeHTTPError,
			Message: "the Collections answer does not have one result per record"}
	}
	for i, r := range batch {
		if err != nil {
			r.done <- saveOutcome{err: err}
			continue
		}
		res := results[i]
		if batch[0].extField == "" {
			res.Created = true // a create's SaveResult has no "created"
		}
		if !res.Success && len(res.Errors) > 0 {
			r.done <- saveOutcome{err: recordError(res)}
			continue
		}
		r.done <- saveOutcome{res: &res}
	}
}

// recordError is a record's failure in a Collections answer, as the
// *salesforce.APIError a single call would have given (status 400, the
// record's first error) with the record's own part of the answer as the
// body.
func recordError(res salesforce.SaveResult) *salesforce.APIError {
	first := res.Errors[0]
	body, _ := json.Marshal(res)
	return &salesforce.APIError{StatusCode: http.StatusBadRequest, ErrorCode: first.StatusCode,
		Message: strings.TrimSpace(first.Message), Fields: first.Fields, Body: body}
}

// coalesceState is the part of an Executor that batches Inserts and shares
// identical Searches.
type coalesceState struct {
	coalesceCalls int
	gather        time.Duration
	shareSearches bool
	coalescers    sync.Map // account → *coalescer
	metrics       *Metrics
	searches      searchFlights
	generations   sync.Map // account → *atomic.Uint64: Inserts that ended
}

// DefaultGather is the most a batch waits for company when the account
// already has a call in flight; see [WithCoalescing].
const DefaultGather = 20 * time.Millisecond

// WithCoalescing sets how many Collections calls of one account may be in
// flight per worker (default [DefaultCoalesceCalls]; 0 turns coalescing of
// Inserts off: every Insert is its own create or upsert) and the most a
// batch waits for more Inserts when a call of its account is already in
// flight (default [DefaultGather]): it waits a quarter of the account's
// recent call latency, at most gather, and not at all when the account
// has no call in flight or the batch is full. calls must be 0 to 100,
// gather 0 to 1s.
func WithCoalescing(calls int, gather time.Duration) Option {
	return func(e *Executor) error {
		if calls < 0 || calls > 100 {
			return fmt.Errorf("blocks: coalesce calls %d out of range 0 to 100", calls)
		}
		if gather < 0 || gather > time.Second {
			return fmt.Errorf("blocks: coalesce gather %v out of range 0 to 1s", gather)
		}
		e.coalesceCalls, e.gather = calls, gather
		return nil
	}
}

// WithSharedSearches turns the sharing of identical Searches on (the
// default) or off.
func WithSharedSearches(on bool) Option {
	return func(e *Executor) error {
		e.shareSearches = on
		return nil
	}
}

// WithMetrics makes the executor count its coalesced calls in m.
func WithMetrics(m *Metrics) Option {
	return func(e *Executor) error {
		e.metrics = m
		return nil
	}
}

// generation counts the Inserts of account that ended on this executor.
// A Search joins only a call that began after the account's latest
// Insert ended, so a flow that inserts then searches on one worker reads
// its own write.
func (c *coalesceState) generation(account string) *atomic.Uint64 {
	if g, ok := c.generations.Load(account); ok {
		return g.(*atomic.Uint64)
	}
	g, _ := c.generations.LoadOrStore(account, new(atomic.Uint64))
	return g.(*atomic.Uint64)
}

// searchAnswer is what one Salesforce search call answered, shared by the
// jobs that asked the same.
type searchAnswer struct {
	recs      []salesforce.Record
	total     int
	truncated bool
	// leader is the span context of the job whose call this was.
	leader trace.SpanContext
}

// shareSearch runs call once for every job asking the same search at the
// same moment. The first job runs the call itself, on its own goroutine and
// under its own context; the others wait for its answer. A waiting job whose
// leader's call ended by the leader's deadline or cancellation, not its own,
// runs its own call: a job that gives up does not fail the others.
//
// The call runs on the leader's goroutine rather than a new one (as
// singleflight.DoChan would): a worker's job goroutines are long-lived and
// keep their grown stacks, and a fresh goroutine per search paid for
// growing one again (about 5% of a search's CPU at full load).
func (c *coalesceState) shareSearch(ctx context.Context, account string, job *Job, call func(context.Context) (*searchAnswer, error)) (*searchAnswer, error) {
	if !c.shareSearches {
		return call(ctx)
	}
	f, led := c.searches.join(c.searchKey(account, job))
	if led {
		f.ans, f.err = runShared(ctx, call)
		if f.ans != nil {
			f.ans.leader = trace.SpanContextFromContext(ctx)
		}
		c.searches.land(f)
		return f.ans, f.err
	}
	return c.followSearch(ctx, account, f, call)
}

// searchKey is what identical Searches in flight share. It and
// followSearch are functions of their own so that shareSearch's frame
// stays small: the leader's call to Salesforce waits below it (see
// worker/pool.go).
func (c *coalesceState) searchKey(account string, job *Job) string {
	gen := c.generation(account).Load()
	var kb strings.Builder
	kb.Grow(len(account) + len(job.statement) + 32)
	kb.WriteString(account)
	kb.WriteByte(0)
	kb.WriteString(strconv.FormatUint(gen, 10))
	kb.WriteByte(0)
	kb.WriteString(strconv.FormatBool(job.sosl))
	kb.WriteByte(0)
	kb.WriteString(strconv.Itoa(job.maxRecords))
	kb.WriteByte(0)
	kb.WriteString(job.statement)
	return kb.String()
}

// followSearch waits for the flight another job leads.
func (c *coalesceState) followSearch(ctx context.Context, account string, f *searchFlight, call func(context.Context) (*searchAnswer, error)) (*searchAnswer, error) {
	select {
	case <-f.done:
		c.metrics.sharedSearch(account)
		if f.err != nil && ctx.Err() == nil && (errors.Is(f.err, context.DeadlineExceeded) || errors.Is(f.err, context.Canceled)) {
			// The call ran out of another job's time, not this one's.
			return call(ctx)
		}
		if f.err == nil && f.ans != nil {
			linkTo(ctx, f.ans.leader, linkSharedSearch, attribute.Bool("sfblocks.search.shared", true))
		}
		return f.ans, f.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// runShared runs a shared call, turning a panic into an error: the jobs
// waiting for it must get an answer, and the leader's Run reports it as
// any other internal error.
func runShared(ctx context.Context, call func(context.Context) (*searchAnswer, error)) (ans *searchAnswer, err error) {
	defer func() {
		if p := recover(); p != nil {
			ans, err = nil, &sfblocks.Error{Code: sfblocks.CodeInternal,
				Message: "internal error while searching (a bug in sfblocks; the worker keeps running)",
				Err:     fmt.Errorf("panic: %v", p)}
		}
	}()
	return call(ctx)
}

// searchFlights are the shared searches in flight, by key.
type searchFlights struct {
	mu sync.Mutex
	m  map[string]*searchFlight
}

// searchFlight is one shared search call; ans and err are set before done
// is closed.
type searchFlight struct {
	key  string
	done chan struct{}
	ans  *searchAnswer
	err  error
}

// join returns the flight of key, and whether the caller leads it (it
// must run the call, then land the flight).
func (fs *searchFlights) join(key string) (*searchFlight, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if f, ok := fs.m[key]; ok {
		return f, false
	}
	if fs.m == nil {
		fs.m = make(map[string]*searchFlight)
	}
	f := &searchFlight{key: key, done: make(chan struct{})}
	fs.m[key] = f
	return f, true
}

// land ends f: later searches start a call of their own, and the jobs
// waiting for f get its answer.
func (fs *searchFlights) land(f *searchFlight) {
	fs.mu.Lock()
	delete(fs.m, f.key)
	fs.mu.Unlock()
	close(f.done)
}
