package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks"
)

// Failures of the durable path itself, as *sfblocks.Error so the decision
// (settle) and the failure replies classify them like any other.
var (
	// errResultsUnreadable: the kept-result lookup failed, so the worker
	// cannot tell whether the job already ran; it is handed back.
	errResultsUnreadable = &sfblocks.Error{
		Code:      sfblocks.CodeInternal,
		Message:   "the worker could not check whether the job already ran (results bucket unavailable); it will be delivered again",
		Retryable: true,
	}
	// errHandedBack marks a durable job that the drain timeout cut short:
	// its outcome is unknown and it is handed back to the fleet.
	errHandedBack = errors.New("worker: durable job cut short by the drain timeout; handed back")
)

// JobsSubject returns the subject durable jobs of block are published on,
// e.g. "sfblocks.jobs.insert".
func (w *Worker) JobsSubject(block sfblocks.Block) string {
	return w.cfg.prefix + ".jobs." + string(block)
}

// durable is the worker's JetStream path: one fetch loop per block pulls
// jobs from the block's durable consumer, only as many as there are free
// in-flight slots, and runs each on its own goroutine.
type durable struct {
	w      *Worker
	cfg    DurableConfig
	js     jetstream.JetStream
	res    *results
	att    *attemptsStore
	policy retryPolicy

	mu   sync.Mutex
	cons map[sfblocks.Block]jetstream.Consumer

	stop     chan struct{} // closed by Stop: fetch no more
	stopOnce sync.Once
	running  atomic.Int64
}

func newDurable(w *Worker, cfg DurableConfig) *durable {
	return &durable{w: w, cfg: cfg, cons: make(map[sfblocks.Block]jetstream.Consumer), stop: make(chan struct{})}
}

// setup creates or updates the stream, the two consumers and the results
// bucket. Every worker does it at start, possibly at the same moment: each
// step is a create-or-update, and a create that lost the race to another
// worker is retried as an update.
func (d *durable) setup(ctx context.Context) error {
	js, err := jetstream.New(d.w.nc)
	if err != nil {
		return fmt.Errorf("worker: JetStream: %w", err)
	}
	d.js = js
	subjects := make([]string, 0, len(sfblocks.Blocks()))
	for _, b := range sfblocks.Blocks() {
		subjects = append(subjects, d.w.JobsSubject(b))
	}
	scfg := jetstream.StreamConfig{
		Name:        d.cfg.Stream,
		Description: "sfblocks durable jobs: one message per job, removed once a worker acks it",
		Subjects:    subjects,
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Duplicates:  d.cfg.DuplicateWindow,
		Replicas:    d.cfg.Replicas,
	}
	if err := retryRace(func() error { _, err := js.CreateOrUpdateStream(ctx, scfg); return err }); err != nil {
		return fmt.Errorf("worker: creating or updating stream %s: %w (is JetStream enabled on the NATS server? a stream of that name with another retention or storage cannot be updated: delete it or set another stream name)", d.cfg.Stream, err)
	}
	for _, b := range sfblocks.Blocks() {
		if err := d.ensureConsumer(ctx, b); err != nil {
			return err
		}
	}
	kcfg := jetstream.KeyValueConfig{
		Bucket:      d.cfg.ResultsBucket,
		Description: "sfblocks results of finished durable jobs, by job id",
		TTL:         d.cfg.ResultsTTL,
		Storage:     jetstream.FileStorage,
		Replicas:    d.cfg.Replicas,
		History:     1,
	}
	var kv jetstream.KeyValue
	if err := retryRace(func() (err error) { kv, err = js.CreateOrUpdateKeyValue(ctx, kcfg); return err }); err != nil {
		return fmt.Errorf("worker: creating or updating results bucket %s: %w", d.cfg.ResultsBucket, err)
	}
	timeout := d.cfg.AckWait / 3
	if timeout > 10*time.Second {
		timeout = 10 * time.Second
	}
	d.res = &results{kv: kv, timeout: timeout}
	acfg := jetstream.KeyValueConfig{
		Bucket:      d.cfg.AttemptsBucket,
		Description: "sfblocks failure state of durable jobs being retried (attempts, first and last failure), by job id",
		TTL:         d.cfg.ResultsTTL,
		Storage:     jetstream.FileStorage,
		Replicas:    d.cfg.Replicas,
		History:     1,
	}
	var akv jetstream.KeyValue
	if err := retryRace(func() (err error) { akv, err = js.CreateOrUpdateKeyValue(ctx, acfg); return err }); err != nil {
		return fmt.Errorf("worker: creating or updating attempts bucket %s: %w", d.cfg.AttemptsBucket, err)
	}
	d.att = &attemptsStore{kv: akv, timeout: timeout}
	dcfg := d.dlqStreamConfig()
	if err := retryRace(func() error { _, err := js.CreateOrUpdateStream(ctx, dcfg); return err }); err != nil {
		return fmt.Errorf("worker: creating or updating dead-letter stream %s: %w", d.cfg.DLQStream, err)
	}
	d.policy = retryPolicy{maxAttempts: d.cfg.MaxAttempts, maxDeliver: d.cfg.MaxDeliver,
		backoff: d.cfg.RetryBackoff, maxBackoff: d.cfg.MaxRetryBackoff}
	return nil
}

// retryRace runs f again when it lost a creation race with another worker
// (the second create of a stream with the same name fails "already in use").
func retryRace(f func() error) error {
	var err error
	for i := 0; i < 3; i++ {
		if err = f(); !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) && !errors.Is(err, jetstream.ErrBucketExists) {
			return err
		}
	}
	return err
}

// consumerConfig is the durable pull consumer of block shared by the fleet.
func (d *durable) consumerConfig(b sfblocks.Block) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       string(b),
		Description:   "sfblocks workers pulling " + string(b) + " jobs",
		FilterSubject: d.w.JobsSubject(b),
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       d.cfg.AckWait,
		MaxDeliver:    d.cfg.MaxDeliver,
		MaxAckPending: d.cfg.MaxAckPending,
	}
}

// ensureConsumer creates or updates block's consumer (one atomic request).
func (d *durable) ensureConsumer(ctx context.Context, b sfblocks.Block) error {
	c, err := d.js.CreateOrUpdateConsumer(ctx, d.cfg.Stream, d.consumerConfig(b))
	if err != nil {
		return fmt.Errorf("worker: creating or updating consumer %s on stream %s: %w", b, d.cfg.Stream, err)
	}
	d.mu.Lock()
	d.cons[b] = c
	d.mu.Unlock()
	return nil
}

func (d *durable) consumer(b sfblocks.Block) jetstream.Consumer {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cons[b]
}

// start launches one fetch loop per block; they count in w.wg.
func (d *durable) start() {
	for _, b := range sfblocks.Blocks() {
		d.w.wg.Add(1)
		go d.loop(b)
	}
}

// stopFetching makes the loops stop pulling; they exit within FetchWait
// (plus a second) and nak whatever they receive from then on.
func (d *durable) stopFetching() {
	d.stopOnce.Do(func() { close(d.stop) })
}

func (d *durable) stopped() bool {
	select {
	case <-d.stop:
		return true
	default:
		return false
	}
}

// acquire takes one in-flight slot, shared with the synchronous path;
// false once the loops must stop.
func (d *durable) acquire() bool {
	if d.stopped() {
		return false
	}
	select {
	case d.w.sem <- struct{}{}:
		return true
	case <-d.stop:
		return false
	}
}

// grab takes up to n more slots without waiting and returns how many it
// took.
func (d *durable) grab(n int) int {
	for got := 0; got < n; got++ {
		select {
		case d.w.sem <- struct{}{}:
		default:
			return got
		}
	}
	return n
}

func (d *durable) release(n int) {
	for i := 0; i < n; i++ {
		<-d.w.sem
	}
}

// loop pulls block's jobs until Stop. A job leaves the stream only when a
// slot is free for it: the loop first takes a slot, then asks for at most
// as many messages as it holds slots (up to Batch) without waiting; when
// that finds nothing, it waits for one job with a single slot, so an idle
// worker holds one slot per block, not Batch.
func (d *durable) loop(b sfblocks.Block) {
	defer d.w.wg.Done()
	log := d.w.log.With().Str("block", string(b)).Str("path", sfblocks.PathDurable).Logger()
	idle := true
	failures := 0
	for d.acquire() {
		n := 1
		if !idle {
			n += d.grab(d.cfg.Batch - 1)
		}
		cons := d.consumer(b)
		start := time.Now()
		var batch jetstream.MessageBatch
		var err error
		if idle {
			batch, err = cons.Fetch(1, jetstream.FetchMaxWait(d.cfg.FetchWait))
		} else {
			batch, err = cons.FetchNoWait(n)
		}
		got := 0
		if err == nil {
			for msg := range batch.Messages() {
				if got == n || d.stopped() {
					// Stopping: an unstarted job goes back at once to
					// another worker.
					d.settleMsg(b, msg, settlement{action: actionNak}, "worker stopping: job handed back unstarted")
					continue
				}
				got++
				d.w.mu.Lock()
				d.w.wg.Add(1)
				d.w.mu.Unlock()
				d.running.Add(1)
				d.w.m.InFlight.Inc()
				d.w.stats[b].inFlight.Add(1)
				go d.run(b, msg)
			}
			err = batch.Error()
		}
		d.release(n - got)
		// A pull that ended at once with nothing and no error (e.g. the
		// server lost the request) must not spin: count it as a failure.
		if err == nil && got == 0 && idle && time.Since(start) < d.cfg.FetchWait/2 {
			err = errors.New("pull returned early without messages")
		}
		if err != nil {
			failures++
			if failures == 1 || failures%10 == 0 {
				log.Warn().Err(err).Int("failures", failures).Msg("pulling durable jobs failed; retrying")
			}
			d.pause(failures)
			if d.stopped() {
				return
			}
			// The consumer may be gone (deleted, or the server lost it):
			// recreating it is idempotent.
			ctx, cancel := context.WithTimeout(context.Background(), d.cfg.SetupTimeout)
			if err := d.ensureConsumer(ctx, b); err != nil && failures%10 == 0 {
				log.Warn().Err(err).Msg("recreating the durable consumer failed")
			}
			cancel()
			idle = true
			continue
		}
		if failures > 0 {
			log.Info().Int("failures", failures).Msg("pulling durable jobs again")
			failures = 0
		}
		idle = got == 0
	}
}

// pause waits before the next pull after failures (100ms doubling to 5s),
// or until Stop.
func (d *durable) pause(failures int) {
	delay := 100 * time.Millisecond << min(failures-1, 6)
	if delay > 5*time.Second {
		delay = 5 * time.Second
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-d.stop:
	}
}

// keepAlive tells JetStream every AckWait/3 that msg is still being worked
// on, so AckWait never runs out under a long job; the returned func stops
// it.
func (d *durable) keepAlive(msg jetstream.Msg) func() {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(d.cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				_ = msg.InProgress()
			case <-done:
				return
			}
		}
	}()
	return func() { close(done) }
}

// durableJob is one durable message on its way to being settled.
type durableJob struct {
	block    sfblocks.Block
	msg      jetstream.Msg
	id       string // the payload's id, else Sfblocks-Job-Id, else Nats-Msg-Id, else stream-seq
	ownID    string // the payload's own id, "" when it has none
	key      string // sfblocks.ResultKey(id)
	replyTo  string
	attempt  int // this run's attempt: failed attempts before it + 1
	delivery int // JetStream's delivery count
	replay   bool
	replays  int
	replayOf uint64
	received time.Time
}

// run executes one durable job on its own goroutine, holding one slot.
func (d *durable) run(b sfblocks.Block, msg jetstream.Msg) {
	w := d.w
	defer func() {
		d.running.Add(-1)
		w.m.InFlight.Dec()
		w.stats[b].inFlight.Add(-1)
		<-w.sem
		w.wg.Done()
	}()
	stop := d.keepAlive(msg)
	defer stop()

	j := &durableJob{block: b, msg: msg, received: time.Now(), attempt: 1, delivery: 1}
	var seq uint64
	if meta, err := msg.Metadata(); err == nil {
		j.delivery, seq = int(meta.NumDelivered), meta.Sequence.Stream
	}
	if j.delivery > 1 {
		w.m.DurableRedelivered.WithLabelValues(string(b)).Inc()
	}
	h := msg.Headers()
	j.ownID = payloadID(msg.Data())
	// Keyed by the payload's id first: a replay carries the original id in
	// its payload but a Nats-Msg-Id of its own (the duplicate window would
	// drop it otherwise).
	for _, id := range []string{j.ownID, h.Get(sfblocks.HeaderJobID), h.Get(sfblocks.HeaderMsgID)} {
		if j.id == "" && id != "" && len(id) <= 1024 && printable(id) {
			j.id = id
		}
	}
	if j.id == "" {
		j.id = fmt.Sprintf("%s-%d", d.cfg.Stream, seq)
	}
	j.key = sfblocks.ResultKey(j.id)
	j.replyTo = h.Get(sfblocks.HeaderReplyTo)
	j.replays, j.replayOf = replays(h)
	j.replay = j.replayOf != 0

	// Only a redelivered job can have a failure state: reading it costs
	// nothing on the first delivery.
	var st failureState
	if j.delivery > 1 {
		var err error
		if st, err = d.att.get(w.base, j.key); err != nil {
			w.log.Warn().Err(err).Str("job_id", j.id).Str("block", string(b)).Msg("cannot read a durable job's attempts")
			e := *errResultsUnreadable
			e.Err = err
			d.settleMsg(b, msg, settle(outcome{err: &e, delivery: j.delivery}, d.policy), "")
			return
		}
		if st.Final != nil {
			// The run before failed for good but could not be dead-lettered:
			// only dead-letter it now.
			if r := decodeKept(st.Final); r != nil {
				d.deadLetter(j, settlement{action: actionTerm, reply: r, deadLetter: st.Reason}, r, st.Final, st, false)
				return
			}
		}
		j.attempt = st.Attempts + 1
	}

	reply, data, replayed, err := d.execute(j)
	s := settle(outcome{reply: reply, err: err, kept: replayed, attempt: j.attempt, delivery: j.delivery,
		maybeSaved: blocks.MayHaveSaved(reply)}, d.policy)
	if err != nil {
		reply, data = nil, nil // no outcome: settle answers, if anything
	}
	if s.reply != nil && s.reply != reply {
		// The decision answers a job that will not run again.
		s.reply.ID, s.reply.Attempt = j.id, j.attempt
		if j.ownID != "" {
			s.reply.ID = j.ownID
		}
		reply, data = w.encode(s.reply)
		replayed = false
	}
	switch {
	case s.deadLetter != "":
		d.deadLetter(j, s, reply, data, st, true)
	case s.retry:
		d.retry(j, s, reply, st)
	default:
		if s.reply != nil {
			d.answer(j, reply, data, replayed)
			if st.Attempts > 0 {
				d.clearAttempts(j)
			}
		}
		d.settleMsg(b, msg, s, "")
	}
}

// retry keeps the failed attempt in the job's failure state and hands the
// job back for a delayed redelivery; the caller gets no reply yet.
func (d *durable) retry(j *durableJob, s settlement, reply *sfblocks.Reply, st failureState) {
	w := d.w
	st = st.failed(reply, j.attempt, time.Now())
	if err := d.att.put(w.base, j.key, st); err != nil {
		// Not counted: the job is still retried, and the next failure that
		// can be kept counts again.
		w.log.Warn().Err(err).Str("job_id", j.id).Str("block", string(j.block)).Msg("could not keep the failed attempt; it is not counted")
	}
	w.m.DurableRetried.WithLabelValues(string(j.block), string(reply.Error.Code)).Inc()
	w.log.Info().Str("job_id", j.id).Str("block", string(j.block)).Str("path", sfblocks.PathDurable).Str("account", reply.Account).
		Str("code", string(reply.Error.Code)).Int("attempt", j.attempt).Int("max_attempts", d.cfg.MaxAttempts).
		Dur("retry_in", s.delay).Msg("job failed; retrying")
	d.settleMsg(j.block, j.msg, s, "")
}

// deadLetter publishes the job's final failure to the dead-letter stream,
// then keeps and sends the failure reply and terminates the message. When
// the dead letter cannot be stored, the job is handed back (nak) with its
// final reply kept in its failure state, so the next delivery only tries
// the dead letter again: a job is never acked without its dead letter.
func (d *durable) deadLetter(j *durableJob, s settlement, reply *sfblocks.Reply, data []byte, st failureState, ran bool) {
	w := d.w
	now := time.Now()
	if ran {
		st = st.failed(reply, j.attempt, now)
	}
	dl := newDeadLetter(j.block, sfblocks.PathDurable, s.deadLetter, j.id, j.msg.Subject(), j.msg.Data(), j.msg.Headers(), reply, st)
	dl.Replays, dl.ReplayOf = j.replays, j.replayOf
	if err := d.publishDeadLetter(w.base, dl); err != nil {
		w.log.Error().Err(err).Str("job_id", j.id).Str("block", string(j.block)).
			Msg("could not dead-letter a failed job; handing it back to try again later (is the dead-letter stream full?)")
		st.Final, st.Reason = data, s.deadLetter
		if err := d.att.put(w.base, j.key, st); err != nil {
			w.log.Warn().Err(err).Str("job_id", j.id).Msg("could not keep the pending dead letter; the job will run again")
		}
		d.settleMsg(j.block, j.msg, settlement{action: actionNak, delay: min(time.Duration(j.delivery)*2*time.Second, maxNakDelay)}, "")
		return
	}
	d.answer(j, reply, data, false)
	if j.delivery > 1 {
		d.clearAttempts(j)
	}
	d.settleMsg(j.block, j.msg, settlement{action: actionTerm}, "")
}

func (d *durable) clearAttempts(j *durableJob) {
	if err := d.att.clear(d.w.base, j.key); err != nil {
		d.w.log.Warn().Err(err).Str("job_id", j.id).Msg("could not clear the job's attempts; a replay may count them")
	}
}

// failed returns st with one more failed attempt, reply's failure.
func (st failureState) failed(reply *sfblocks.Reply, attempt int, now time.Time) failureState {
	now = now.UTC()
	st.Attempts = max(st.Attempts, attempt)
	if st.FirstFailure.IsZero() {
		st.FirstFailure = now
	}
	st.LastFailure = now
	if reply != nil && reply.Error != nil {
		st.LastCode, st.LastMessage = reply.Error.Code, reply.Error.Message
	}
	return st
}

// execute returns the job's reply: the kept one when the job already
// finished (replayed), else a fresh run of the handler. An error means the
// job has no outcome (results bucket unreadable, cut short by the drain
// timeout) and is for settle to decide.
func (d *durable) execute(j *durableJob) (reply *sfblocks.Reply, data []byte, replayed bool, err error) {
	w := d.w
	kept, err := d.res.get(w.base, j.key)
	if err != nil {
		w.log.Warn().Err(err).Str("job_id", j.id).Str("block", string(j.block)).Msg("cannot read the kept result of a durable job")
		e := *errResultsUnreadable
		e.Err = err
		return nil, nil, false, &e
	}
	if kept != nil {
		r := decodeKept(kept)
		switch {
		case r == nil:
			w.log.Warn().Str("job_id", j.id).Msg("kept result does not decode; running the job again")
		case j.replay && r.Status == sfblocks.StatusFailed:
			// A replayed dead letter really runs again; only a kept
			// success answers a replay.
		default:
			w.m.DurableReplayed.WithLabelValues(string(j.block)).Inc()
			w.log.Info().Str("job_id", j.id).Str("block", string(j.block)).Str("path", sfblocks.PathDurable).
				Int("attempt", j.attempt).Str("status", string(r.Status)).Msg("durable job already finished: answering with its kept result")
			return r, kept, true, nil
		}
	}
	reply = w.handle(j.block, j.msg.Data(), func() string { return j.id })
	if w.base.Err() != nil && reply.Status == sfblocks.StatusFailed {
		// Hard shutdown cancelled the job: its outcome is unknown. The
		// reply still says whether it may have saved a record.
		return reply, nil, false, errHandedBack
	}
	if j.ownID == "" {
		reply.ID = j.id
	}
	reply.Attempt = j.attempt
	if reply.DurationMS == 0 {
		reply.DurationMS = time.Since(j.received).Milliseconds()
	}
	reply, data = w.encode(reply)
	return reply, data, false, nil
}

// answer keeps a fresh result, then publishes the reply: kept before sent,
// so a job redelivered after this point never calls Salesforce again.
func (d *durable) answer(j *durableJob, reply *sfblocks.Reply, data []byte, replayed bool) {
	w := d.w
	if !replayed {
		if err := d.res.put(w.base, j.key, data); err != nil {
			// Still answered and acked: the caller gets the result, and
			// only a redelivery (lost ack) would run the job again.
			w.log.Error().Err(err).Str("job_id", j.id).Str("block", string(j.block)).
				Msg("could not keep the durable job's result; a redelivery would run it again")
		}
		w.record(j.block, sfblocks.PathDurable, reply, time.Since(j.received))
	}
	if j.replyTo == "" {
		w.log.Info().Str("job_id", j.id).Str("block", string(j.block)).Str("result_key", j.key).
			Msg("durable job had no Reply-To header; its result is kept in the results bucket only")
		return
	}
	if err := w.nc.PublishMsg(replyMsg(j.replyTo, reply, data)); err != nil {
		w.log.Error().Err(err).Str("job_id", j.id).Str("block", string(j.block)).
			Msg("publishing the durable job's reply; its result is kept in the results bucket")
	}
}

// settleMsg acks, naks or terminates msg as s says.
func (d *durable) settleMsg(b sfblocks.Block, msg jetstream.Msg, s settlement, reason string) {
	var err error
	switch s.action {
	case actionAck:
		err = msg.Ack()
	case actionNak:
		if s.delay > 0 {
			err = msg.NakWithDelay(s.delay)
		} else {
			err = msg.Nak()
		}
	case actionTerm:
		err = msg.TermWithReason("sfblocks: failed for good; dead-lettered")
	}
	d.w.m.DurableSettled.WithLabelValues(string(b), string(s.action)).Inc()
	if err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		d.w.log.Warn().Err(err).Str("block", string(b)).Str("action", string(s.action)).
			Msg("settling a durable job failed; JetStream will deliver it again after the ack wait")
	}
	if reason != "" {
		d.w.log.Debug().Str("block", string(b)).Str("action", string(s.action)).Msg(reason)
	}
}
