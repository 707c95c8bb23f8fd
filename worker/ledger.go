package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sfblocks/sfblocks"
)

// The ledger is the fleet's bookkeeping of jobs, in three JetStream KV
// buckets keyed by the job's identity (sfblocks.JobIdentity.Key):
//
//   - results: a finished job's reply and fingerprint (sfblocks.KeptResult),
//     so a job sent again is answered from it and never runs twice;
//   - attempts: a job's failure history and, while an attempt that writes
//     to Salesforce is under way or undecided, its run record: which
//     attempt started when (the server's timestamp of the record) with
//     which deadline. It outlives the attempt's lease, so whoever takes the
//     job over next knows an attempt may have created a record;
//   - claims: an attempt's lease, with a per-key TTL that the NATS server
//     enforces by its own clock. While it exists, no other worker runs the
//     job; a worker never runs a job's Salesforce call past its lease.
//
// Every operation runs under its own bounded context, detached from the
// job's and the worker's (see bookkeeping), so a drain deadline that cuts a
// Salesforce call short never cuts the bookkeeping after it. Each is
// retried across a JetStream leader change for up to window (see
// failover.go), in ways that cannot write twice.
type ledger struct {
	results  jetstream.KeyValue
	attempts jetstream.KeyValue
	claims   jetstream.KeyValue
	// timeout bounds one try of a KV operation.
	timeout time.Duration
	// window bounds the tries of one operation across a leader change;
	// zero means one try.
	window time.Duration
	// leaderReads, set on a fleet with more than one replica, reads
	// through each bucket's leader (see ledger_read.go) on nc.
	leaderReads *nats.Conn
}

// bookkeeping returns a context for one KV operation: not cancelled with
// parent (a job's or a draining worker's context), bounded by timeout.
func bookkeeping(parent context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(parent), timeout)
}

// errLedger wraps every failure to read or write the ledger: the job's
// fate is unknown to this worker, so it must not call Salesforce (or, after
// a call, must retry the write before settling).
var errLedger = errors.New("worker: the job ledger (JetStream KV) is unavailable")

func ledgerErr(what string, err error) error {
	return fmt.Errorf("%w: %s: %w", errLedger, what, err)
}

// gaveUp is the error of a write retried until its deadline: it names the
// cluster state when the last failure was a leader change's.
func (l *ledger) gaveUp(what string, kv jetstream.KeyValue, last error, deadline time.Duration, ctxErr error) error {
	if transient(last) {
		return ledgerErr(what, noLeader(what, kvStream(kv), deadline, last))
	}
	return ledgerErr(what, errors.Join(last, ctxErr))
}

// get reads key from kv, retried across a leader change; with
// leaderReads, from the bucket's leader.
func (l *ledger) get(ctx context.Context, kv jetstream.KeyValue, what, key string) (*entry, error) {
	var e *entry
	err := retryJS(ctx, l.window, l.timeout, what, kvStream(kv), func(ctx context.Context) error {
		if l.leaderReads != nil {
			var err error
			e, err = leaderGet(ctx, l.leaderReads, kv, key)
			return err
		}
		kve, err := kv.Get(ctx, key)
		if err == nil {
			e = &entry{value: kve.Value(), revision: kve.Revision(), created: kve.Created()}
		}
		return err
	})
	return e, err
}

// kept is a result read from the results bucket.
type kept struct {
	sfblocks.KeptResult
	revision uint64
	reply    *sfblocks.Reply // decoded Reply; nil when it does not decode
}

// result returns the job's kept result, nil when there is none.
func (l *ledger) result(ctx context.Context, key string) (*kept, error) {
	e, err := l.get(ctx, l.results, "reading the kept result", key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return nil, nil
	case err != nil:
		return nil, ledgerErr("reading the kept result", err)
	}
	k := &kept{revision: e.Revision()}
	if json.Unmarshal(e.Value(), &k.KeptResult) == nil {
		k.reply = decodeKept(k.Reply)
	}
	return k, nil
}

// errIDReused: the results entry of the job's key is another job's (one
// that used the same id with other content); keep left it as it was.
var errIDReused = errors.New("the job's id was used by another job, whose result is kept")

// keep stores a finished job's reply. A success is never overwritten: when
// another run already kept a success (it adopted this run's record, or ran
// the job while this one was cut off from NATS), keep leaves it and returns
// it, and the caller answers with it. A failure replaces an earlier failure
// (a replay that failed again) but not a success. Another job's result (the
// id reused with other content) is neither replaced nor returned, except a
// failure a replay runs again: keep reports errIDReused. It retries a write
// lost to a reconnect, within deadline.
func (l *ledger) keep(ctx context.Context, key, fingerprint string, data []byte, success, replay bool, deadline time.Duration) (*kept, error) {
	value := keptValue(fingerprint, data)
	var prior *kept
	err := l.untilWritten(ctx, "keeping the result", l.results, deadline, func(ctx context.Context) (bool, error) {
		octx, ocancel := context.WithTimeout(ctx, l.timeout)
		_, err := l.results.Create(octx, key, value)
		ocancel()
		switch {
		case err == nil:
			return true, nil
		case !errors.Is(err, jetstream.ErrKeyExists):
			return false, err
		}
		p, err := l.result(ctx, key)
		switch {
		case err != nil:
			return false, err
		case p == nil:
			return false, nil // deleted meanwhile: create again
		case conflict(p.Fingerprint, fingerprint) && !(replay && p.failed()):
			// A replay may run a corrected job in place of its kept
			// failure; nothing else replaces another job's result.
			return true, errIDReused
		case p.reply != nil && p.reply.Status != sfblocks.StatusFailed:
			prior = p // a success stays
			return true, nil
		}
		octx, ocancel = context.WithTimeout(ctx, l.timeout)
		_, err = l.results.Update(octx, key, value, p.revision)
		ocancel()
		return err == nil, err // lost a race: look again
	})
	return prior, err
}

// untilWritten runs try until it is done or deadline passes, pausing a
// little longer after each failed try; try bounds each of its operations by
// l.timeout. A try that is done returns its error as the outcome (nil, or
// one the caller acts on); one that is not is tried again, and the last
// such error explains a write given up.
func (l *ledger) untilWritten(ctx context.Context, what string, kv jetstream.KeyValue, deadline time.Duration, try func(ctx context.Context) (done bool, err error)) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deadline)
	defer cancel()
	var last error
	for attempt := 0; ctx.Err() == nil; attempt++ {
		if attempt > 0 {
			pause(ctx, time.Duration(min(attempt, 5))*200*time.Millisecond)
		}
		done, err := try(ctx)
		if done {
			return err
		}
		last = err
	}
	return l.gaveUp(what, kv, last, deadline, ctx.Err())
}

// keptValue encodes a [sfblocks.KeptResult] by hand: data is the reply as
// it was sent (valid JSON already), and json.Marshal would scan it again
// for every job; a fingerprint is hex.
func keptValue(fingerprint string, data []byte) []byte {
	b := make([]byte, 0, len(data)+len(fingerprint)+28)
	if fingerprint != "" {
		b = append(b, `{"fingerprint":"`...)
		b = append(b, fingerprint...)
		b = append(b, `","reply":`...)
	} else {
		b = append(b, `{"reply":`...)
	}
	b = append(b, data...)
	return append(b, '}')
}

// lease is one attempt's claim on a job.
type lease struct {
	Worker      string `json:"worker"`
	Attempt     int    `json:"attempt"`
	TimeoutMS   int64  `json:"timeout_ms"`
	Fingerprint string `json:"fingerprint,omitempty"`
	// Nonce is unique to one claim: a Create retried after its answer was
	// lost in a leader change finds the lease it made itself by it, and
	// no other run (even this worker's, of the same attempt) can pass
	// for it.
	Nonce string `json:"nonce,omitempty"`
}

// claimed is the outcome of trying to take a job's lease.
type claimed struct {
	// revision of this worker's lease; 0 when another holds it.
	revision uint64
	// holder is the current lease when another worker holds it.
	holder *lease
	// stored is the NATS server's timestamp of this worker's lease when the
	// claim read it anyway (a Create retried after its answer was lost);
	// zero otherwise, and [ledger.leaseStored] reads it when needed.
	stored time.Time
}

// errLeaseGone: this worker's new lease was no longer there when it was
// read back: it ran out while its bucket elected a leader for longer than
// its TTL.
var errLeaseGone = errors.New("the job's new lease ran out before it could be read (its bucket was electing a leader); the job is retried")

// claim takes the job's lease for ttl, measured by the server. It reports
// who holds it when another worker does.
func (l *ledger) claim(ctx context.Context, key string, ls lease, ttl time.Duration) (claimed, error) {
	ls.Nonce = newJobID()
	data, err := json.Marshal(ls)
	if err != nil {
		return claimed{}, err
	}
	for range 3 {
		var rev uint64
		err := retryJS(ctx, l.window, l.timeout, "claiming the job", kvStream(l.claims), func(ctx context.Context) (err error) {
			rev, err = l.claims.Create(ctx, key, data, jetstream.KeyTTL(ttl))
			return err
		})
		switch {
		case err == nil:
			return claimed{revision: rev}, nil
		case !errors.Is(err, jetstream.ErrKeyExists):
			return claimed{}, ledgerErr("claiming the job", err)
		}
		e, err := l.get(ctx, l.claims, "reading the job's lease", key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // expired or released meanwhile: claim again
		}
		if err != nil {
			return claimed{}, ledgerErr("reading the job's lease", err)
		}
		var holder lease
		_ = json.Unmarshal(e.Value(), &holder)
		if holder.Nonce != ls.Nonce {
			return claimed{holder: &holder}, nil
		}
		// An earlier try's Create landed; its answer was lost.
		return claimed{revision: e.Revision(), stored: e.Created()}, nil
	}
	return claimed{}, ledgerErr("claiming the job", errors.New("the lease kept changing hands"))
}

// leaseStored returns the server's timestamp of this worker's lease c: the
// server's clock at the claim, for judging an earlier attempt's run record
// by the server's clock. It costs a read, so only a job that has a run
// record to judge asks for it. errLeaseGone (wrapped in errLedger) when the
// lease is no longer this worker's.
func (l *ledger) leaseStored(ctx context.Context, key string, c claimed) (time.Time, error) {
	if !c.stored.IsZero() {
		return c.stored, nil
	}
	e, err := l.get(ctx, l.claims, "reading the new lease", key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound), err == nil && e.Revision() != c.revision:
		return time.Time{}, ledgerErr("reading the new lease", errLeaseGone)
	case err != nil:
		return time.Time{}, ledgerErr("reading the new lease", err)
	}
	return e.Created(), nil
}

// release deletes this worker's lease, if it still holds it, so that a
// retry (here or elsewhere) need not wait for the lease to expire.
func (l *ledger) release(ctx context.Context, key string, revision uint64) {
	if revision == 0 {
		return
	}
	// A retry after a delete whose answer was lost fails on the revision:
	// harmless, the lease is gone.
	_ = retryJS(ctx, l.window, l.timeout, "releasing the job's lease", kvStream(l.claims), func(ctx context.Context) error {
		return l.claims.Delete(ctx, key, jetstream.LastRevision(revision))
	})
}

// runRecord says that an attempt which writes to Salesforce started, and
// that its outcome is not known yet: set in the attempts bucket before the
// Salesforce call, cleared when the attempt ended without saving anything.
type runRecord struct {
	Attempt     int    `json:"attempt"`
	Worker      string `json:"worker"`
	TimeoutMS   int64  `json:"timeout_ms"`
	Fingerprint string `json:"fingerprint,omitempty"`
	// Nonce is unique to one run: a write of the record retried after its
	// answer was lost finds its own record by it (see [ledger.begin]).
	Nonce string `json:"nonce,omitempty"`
	// Started is when the attempt started, by the NATS server's clock (the
	// record's own timestamp, filled in when read).
	Started time.Time `json:"-"`
}

// history is a job's entry in the attempts bucket.
type history struct {
	failureState
	revision uint64
	stored   time.Time // the server's timestamp of this revision
}

// history returns the job's failure history and run record; zero when it
// has none.
func (l *ledger) history(ctx context.Context, key string) (history, error) {
	e, err := l.get(ctx, l.attempts, "reading the job's attempts", key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return history{}, nil
	case err != nil:
		return history{}, ledgerErr("reading the job's attempts", err)
	}
	h := history{revision: e.Revision(), stored: e.Created()}
	if json.Unmarshal(e.Value(), &h.failureState) != nil {
		return history{revision: h.revision}, nil // a garbled state counts as none
	}
	if h.Running != nil {
		h.Running.Started = h.stored
	}
	return h, nil
}

// record writes the job's failure history, retrying a write lost to a
// reconnect within deadline; the bucket's only writer for a job at a time
// is its lease holder.
func (l *ledger) record(ctx context.Context, key string, st failureState, deadline time.Duration) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return l.untilWritten(ctx, "keeping the job's attempts", l.attempts, deadline, func(ctx context.Context) (bool, error) {
		octx, ocancel := context.WithTimeout(ctx, l.timeout)
		defer ocancel()
		_, err := l.attempts.Put(octx, key, data)
		return err == nil, err
	})
}

// errHistoryChanged: the job's attempts entry is not the revision the
// run was judged on; another run wrote it meanwhile.
var errHistoryChanged = errors.New("the job's attempts changed since they were read")

// begin writes st, which holds this attempt's run record, over the
// revision of the job's history the attempt was judged on (0: there was
// none), so that no run record written meanwhile by another run is
// overwritten unseen. When the history changed, it returns the history as
// it is now and errHistoryChanged, and the caller judges again. A write
// retried after its answer was lost recognises its own record by its nonce.
// It retries a write lost to a reconnect, within deadline.
func (l *ledger) begin(ctx context.Context, key string, st failureState, revision uint64, deadline time.Duration) (history, error) {
	data, err := json.Marshal(st)
	if err != nil {
		return history{}, err
	}
	var out history
	err = l.untilWritten(ctx, "keeping the job's run record", l.attempts, deadline, func(ctx context.Context) (bool, error) {
		octx, ocancel := context.WithTimeout(ctx, l.timeout)
		var rev uint64
		var err error
		if revision == 0 {
			rev, err = l.attempts.Create(octx, key, data)
		} else {
			rev, err = l.attempts.Update(octx, key, data, revision)
		}
		ocancel()
		switch {
		case err == nil:
			out = history{failureState: st, revision: rev}
			return true, nil
		case !errors.Is(err, jetstream.ErrKeyExists):
			return false, err
		}
		now, err := l.history(ctx, key)
		if err != nil {
			return false, err
		}
		out = now
		if now.Running != nil && now.Running.Nonce == st.Running.Nonce {
			return true, nil // an earlier try's write landed; its answer was lost
		}
		return true, errHistoryChanged
	})
	return out, err
}

// forget clears the job's failure history once it has its final outcome,
// so that a later replay starts counting afresh.
func (l *ledger) forget(ctx context.Context, key string) error {
	err := retryJS(ctx, l.window, l.timeout, "clearing the job's attempts", kvStream(l.attempts), func(ctx context.Context) error {
		return l.attempts.Purge(ctx, key)
	})
	if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return ledgerErr("clearing the job's attempts", err)
	}
	return nil
}

// pause waits d or until ctx ends.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// decodeKept reads a kept reply; nil when it does not decode (then the job
// runs again rather than answering garbage).
func decodeKept(data []byte) *sfblocks.Reply {
	var r sfblocks.Reply
	if err := json.Unmarshal(data, &r); err != nil || r.Status == "" {
		return nil
	}
	return &r
}

// await watches the job's results entry until a result is kept or ctx
// ends.
func (l *ledger) await(ctx context.Context, key string) (*kept, error) {
	watch, err := l.results.Watch(ctx, key)
	if err != nil {
		return nil, ledgerErr("watching the job's result", err)
	}
	defer func() { _ = watch.Stop() }()
	for {
		select {
		case e := <-watch.Updates():
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue // nil marks the end of the initial values
			}
			k := &kept{revision: e.Revision()}
			if json.Unmarshal(e.Value(), &k.KeptResult) == nil {
				k.reply = decodeKept(k.Reply)
			}
			return k, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
