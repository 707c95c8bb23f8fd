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
	ledger *ledger
	policy retryPolicy
	// payloads keeps the payloads of dead letters too large to carry
	// their job inline (see dlq.go); created on first use.
	payloads *payloadStore

	mu   sync.Mutex
	cons map[sfblocks.Block]jetstream.Consumer
	// ackWait is each consumer's actual AckWait, which may differ from
	// cfg.AckWait when the fleet was set up with other flags.
	ackWait map[sfblocks.Block]time.Duration
	// parkedLoops are the accounts (by token) whose parked jobs this
	// worker pulls; avail is when each account can run again.
	parkedLoops map[string]bool
	avail       availability

	stop     chan struct{} // closed by Stop: fetch no more
	stopOnce sync.Once
	// health is the last JetStream probe's outcome (health.go).
	health  jsHealth
	running atomic.Int64
}

func newDurable(w *Worker, cfg DurableConfig) *durable {
	return &durable{w: w, cfg: cfg, cons: make(map[sfblocks.Block]jetstream.Consumer),
		ackWait: make(map[sfblocks.Block]time.Duration), parkedLoops: map[string]bool{}, stop: make(chan struct{})}
}

// setup creates the fleet's streams, consumers and buckets where they are
// missing; where they exist it keeps them as they are and logs one error
// naming every setting on which this worker's flags disagree (see
// fleet.go). Every worker does it at start, possibly at the same moment: a
// create that lost the race to another worker reads the winner's.
func (d *durable) setup(ctx context.Context) error {
	js, err := jetstream.New(d.w.nc)
	if err != nil {
		return fmt.Errorf("worker: JetStream: %w", err)
	}
	d.js = js
	if err := CheckReplicas(d.w.nc, d.cfg.Replicas); err != nil {
		return err
	}
	f := &fleet{js: js, cfg: d.cfg, prefix: d.w.cfg.prefix}
	objs, err := f.ensureAll(ctx)
	// A cluster still electing its leaders (just started, or a node just
	// died) answers "temporarily unavailable" or nothing: wait for it
	// within the set-up timeout rather than fail the start. No responders
	// to the JetStream API means JetStream is off: that is not waited for.
	for logged := false; err != nil && transient(err) && !errors.Is(err, nats.ErrNoResponders) && ctx.Err() == nil; {
		if !logged {
			d.w.log.Warn().Err(err).Msg("JetStream not ready yet (cluster forming or electing a leader?): retrying the durable set-up")
			logged = true
		}
		pause(ctx, 500*time.Millisecond)
		f = &fleet{js: js, cfg: d.cfg, prefix: d.w.cfg.prefix}
		objs, err = f.ensureAll(ctx)
	}
	if err != nil {
		return err
	}
	if len(f.diffs) > 0 {
		diffs := make([]string, len(f.diffs))
		for i, x := range f.diffs {
			diffs[i] = x.String()
		}
		d.w.log.Error().Strs("differences", diffs).
			Msg("this worker's flags disagree with the fleet's JetStream settings; running with the fleet's. To change the fleet's settings, run 'sfblocks fleet apply' with the flags you want (see README, Fleet settings)")
	}
	for _, c := range f.changed {
		d.w.log.Info().Msg(c)
	}
	d.mu.Lock()
	for b, c := range objs.consumers {
		d.cons[b] = c
		d.ackWait[b] = objs.ackWait[b]
	}
	d.mu.Unlock()
	timeout := min(d.cfg.AckWait/3, 10*time.Second)
	d.ledger = &ledger{results: objs.results, attempts: objs.attempts, claims: objs.claims, timeout: timeout, window: d.cfg.FailoverWindow}
	if objs.replicated {
		d.ledger.leaderReads = d.w.nc
	}
	d.policy = retryPolicy{maxAttempts: d.cfg.MaxAttempts, maxDeliver: d.cfg.MaxDeliver,
		backoff: d.cfg.RetryBackoff, maxBackoff: d.cfg.MaxRetryBackoff}
	return nil
}

// ensureConsumer creates block's consumer again when it is gone (deleted,
// or lost by the server); an existing one is kept as it is.
func (d *durable) ensureConsumer(ctx context.Context, b sfblocks.Block) error {
	f := &fleet{js: d.js, cfg: d.cfg, prefix: d.w.cfg.prefix}
	c, err := f.ensureConsumer(ctx, b)
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.cons[b] = c
	d.ackWait[b] = c.CachedInfo().Config.AckWait
	d.mu.Unlock()
	return nil
}

func (d *durable) consumer(b sfblocks.Block) jetstream.Consumer {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cons[b]
}

// start launches one fetch loop per block, and the scan for accounts with
// parked jobs; they count in w.wg.
func (d *durable) start() {
	for _, b := range sfblocks.Blocks() {
		d.w.wg.Add(1)
		go d.loop(b)
	}
	d.w.wg.Add(1)
	go d.scanParked()
	d.w.wg.Add(1)
	go d.watchHealth()
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
			// recreating it is idempotent. But the failure is more often a
			// leader change, during which the consumer's info is not
			// answered at all: bounded by the setup timeout (30 s), that
			// wait held every pull up long after the new leader was
			// elected. One short try per failure; the next failure tries
			// again.
			ctx, cancel := context.WithTimeout(context.Background(), min(d.cfg.SetupTimeout, consumerRecheckTimeout))
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

// consumerRecheckTimeout bounds the check, after a failed pull, that the
// block's consumer still exists.
const consumerRecheckTimeout = 2 * time.Second

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

// keepAlive tells JetStream every AckWait/3 (the consumer's own AckWait,
// whatever this worker's flag says) that msg is still being worked on, so
// AckWait never runs out under a long job; the returned func stops it, and
// no InProgress is sent once it has returned (one would race the ack).
//
// A timer that re-arms itself rather than a goroutine with a ticker: most
// jobs end long before the first tick, and a goroutine and a ticker per
// durable job cost about 2% of its CPU.
func (d *durable) keepAlive(b sfblocks.Block, msg jetstream.Msg) func() {
	d.mu.Lock()
	ackWait := d.ackWait[b]
	d.mu.Unlock()
	if ackWait <= 0 {
		ackWait = d.cfg.AckWait
	}
	every := ackWait / 3
	var (
		mu      sync.Mutex
		stopped bool
		t       *time.Timer
	)
	mu.Lock()
	t = time.AfterFunc(every, func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		_ = msg.InProgress()
		t.Reset(every)
	})
	mu.Unlock()
	return func() {
		mu.Lock()
		stopped = true
		t.Stop()
		mu.Unlock()
	}
}
