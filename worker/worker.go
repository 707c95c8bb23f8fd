package worker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/nats-io/nuid"
	"github.com/rs/zerolog"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks"
)

// defaultAbortGrace bounds how long Stop still waits, after the drain
// timeout, for already received messages to be answered with a failure and
// for job goroutines to notice the cancellation. Those answers need no I/O
// besides a publish, so this only matters if something is badly stuck.
const defaultAbortGrace = 5 * time.Second

type state int

const (
	stateNew state = iota
	stateRunning
	stateDraining
	stateStopped
)

// Worker serves the blocks on one NATS connection. Create it with [New],
// then either [Worker.Run] it or [Worker.Start] and later [Worker.Stop] it.
// A Worker runs once. Its methods are safe for concurrent use.
type Worker struct {
	id      string
	replies replyPolicy
	shares  *accountShares
	nc      *nats.Conn
	h       Handler
	cfg     config
	m       *Metrics
	log     zerolog.Logger

	sem        chan struct{} // one slot per job in flight
	backlog    chan *job     // jobs waiting for a slot, at most cfg.backlog (see pool.go)
	waiting    atomic.Int64  // jobs in backlog, or taken from it and waiting for a slot
	overloaded atomic.Bool   // refusing jobs since the last one started at once
	idle       chan *job     // hands a job to an idle pool goroutine
	quit       chan struct{} // closed when Stop has finished: pool goroutines exit
	abortCh    chan struct{} // closed when the drain timeout expired
	base       context.Context
	cancelBase context.CancelFunc
	svcDone    chan struct{} // closed when the micro service stops, for any reason
	svcOnce    sync.Once
	stopped    chan struct{} // closed when Stop has finished
	stats      map[sfblocks.Block]*endpointStats
	outcomes   outcomeMetrics
	tracing    tracing
	durable    *durable // nil unless WithDurable

	errOverloaded *sfblocks.Error

	mu       sync.Mutex
	state    state
	aborting bool // drain timeout expired: answer, don't run
	svc      micro.Service
	inflight map[*job]struct{}
	wg       sync.WaitGroup
	stopErr  error
}

// New builds a worker that serves h on nc; it takes no job until
// [Worker.Start] or [Worker.Run]. It fails on a nil connection or handler and
// on an invalid option (wrapping [ErrInvalidOption]). The caller keeps
// ownership of nc and closes it after the worker stopped.
func New(nc *nats.Conn, h Handler, opts ...Option) (*Worker, error) {
	if nc == nil {
		return nil, fmt.Errorf("%w: nil NATS connection (create one with worker.Connect)", ErrInvalidOption)
	}
	if h == nil {
		return nil, fmt.Errorf("%w: nil handler (pass a *blocks.Executor)", ErrInvalidOption)
	}
	cfg := defaultConfig()
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.pendingMsgs == 0 {
		cfg.pendingMsgs = 16 * cfg.maxInFlight
	}
	if cfg.backlog < 0 {
		cfg.backlog = DefaultBacklogFactor * cfg.maxInFlight
	}
	if cfg.durable != nil {
		d, err := cfg.durable.withDefaults(cfg.maxInFlight)
		if err != nil {
			return nil, err
		}
		cfg.durable = &d
	}
	m := cfg.metrics
	if m == nil {
		m, _ = NewMetrics(nil) // unregistered: cannot fail
	}
	if cfg.workerID == "" {
		host, _ := os.Hostname()
		cfg.workerID = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), nuid.Next()[:6])
	}
	base, cancel := context.WithCancel(context.Background())
	w := &Worker{
		id:         cfg.workerID,
		replies:    newReplyPolicy(cfg.replySubjects, cfg.prefix),
		shares:     &accountShares{share: min(cfg.accountShare, cfg.maxInFlight)},
		nc:         nc,
		h:          h,
		cfg:        cfg,
		m:          m,
		log:        cfg.log.With().Str("component", "worker").Logger(),
		sem:        make(chan struct{}, cfg.maxInFlight),
		backlog:    make(chan *job, cfg.backlog),
		idle:       make(chan *job),
		quit:       make(chan struct{}),
		abortCh:    make(chan struct{}),
		base:       base,
		cancelBase: cancel,
		svcDone:    make(chan struct{}),
		stopped:    make(chan struct{}),
		stats:      make(map[sfblocks.Block]*endpointStats, len(sfblocks.Blocks())),
		inflight:   make(map[*job]struct{}),
		tracing:    newTracing(cfg),

		errOverloaded: overloadError(cfg.maxInFlight, cfg.backlog),
	}
	for _, b := range sfblocks.Blocks() {
		w.stats[b] = &endpointStats{}
	}
	w.outcomes.init(m)
	if cfg.durable != nil {
		w.durable = newDurable(w, *cfg.durable)
	}
	return w, nil
}

// ID returns the name the worker gives itself in leases, run records and
// status reports (see [WithWorkerID]).
func (w *Worker) ID() string { return w.id }

// Subject returns the subject on which the worker serves block, e.g.
// "sfblocks.search".
func (w *Worker) Subject(block sfblocks.Block) string {
	return w.cfg.prefix + "." + string(block)
}

// Start registers the micro service and its endpoints and starts taking
// jobs; when it returns the server routes jobs to this worker. With
// [WithDurable] it first creates or updates the jobs stream, its consumers
// and the results bucket (bounded by ctx and DurableConfig.SetupTimeout,
// whichever ends first), then starts pulling durable jobs. ctx bounds only
// the start: cancelling it later does not stop the worker (use
// [Worker.Stop], or [Worker.Run] with a context). It fails with
// [ErrAlreadyStarted] when called twice, with the JetStream error when the
// durable setup fails (e.g. JetStream not enabled), or with the NATS error
// when the subscriptions cannot be made (e.g. connection closed).
func (w *Worker) Start(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state != stateNew {
		return ErrAlreadyStarted
	}
	if w.durable != nil {
		sctx, cancel := context.WithTimeout(ctx, w.durable.cfg.SetupTimeout)
		err := w.durable.setup(sctx)
		cancel()
		if err != nil {
			return err
		}
	}
	meta := map[string]string{"prefix": w.cfg.prefix, "max_in_flight": fmt.Sprint(w.cfg.maxInFlight),
		"max_backlog": fmt.Sprint(w.cfg.backlog)}
	svc, err := micro.AddService(w.nc, micro.Config{
		Name:         w.cfg.name,
		Version:      w.cfg.version,
		Description:  w.cfg.description,
		QueueGroup:   w.cfg.queueGroup,
		Metadata:     meta,
		StatsHandler: w.endpointStats,
		ErrorHandler: w.asyncError,
		DoneHandler:  func(micro.Service) { w.svcOnce.Do(func() { close(w.svcDone) }) },
	})
	if err != nil {
		return fmt.Errorf("worker: adding micro service %q: %w", w.cfg.name, err)
	}
	group := svc.AddGroup(w.cfg.prefix)
	for _, b := range sfblocks.Blocks() {
		err := group.AddEndpoint(string(b), w.endpoint(b),
			micro.WithEndpointPendingLimits(w.cfg.pendingMsgs, w.cfg.pendingBytes),
			micro.WithEndpointMetadata(map[string]string{"block": string(b)}),
		)
		if err != nil {
			_ = svc.Stop()
			return fmt.Errorf("worker: adding endpoint %s: %w", w.Subject(b), err)
		}
	}
	// Make the subscriptions live at the server before Start returns, so a
	// job published right after is routed here. A disconnected client
	// subscribes on reconnect; that is not an error.
	if w.nc.IsConnected() {
		if err := w.nc.FlushTimeout(DefaultConnTimeout); err != nil {
			w.log.Warn().Err(err).Msg("flushing subscriptions at start")
		}
	}
	w.svc = svc
	w.state = stateRunning
	go w.dispatch()
	if w.durable != nil {
		w.durable.start()
		w.log.Info().Str("search", w.JobsSubject(sfblocks.Search)).Str("insert", w.JobsSubject(sfblocks.Insert)).
			Str("config", w.durable.cfg.String()).Msg("pulling durable jobs")
	}
	w.log.Info().Str("service", w.cfg.name).Str("version", w.cfg.version).
		Str("id", svc.Info().ID).Str("prefix", w.cfg.prefix).Str("queue_group", w.cfg.queueGroup).
		Int("max_in_flight", w.cfg.maxInFlight).Int("max_backlog", w.cfg.backlog).Msg("worker started")
	return nil
}

// Run starts the worker, serves until ctx is cancelled, then drains it with
// [Worker.Stop] (bounded by the drain timeout) and returns. It returns nil
// after a clean drain, [ErrServiceStopped] when the service stopped on its
// own (NATS connection closed), or the Start/Stop error.
func (w *Worker) Run(ctx context.Context) error {
	if err := w.Start(ctx); err != nil {
		return err
	}
	return w.Serve(ctx)
}

// Serve waits on a started worker until ctx is cancelled, then drains it
// like [Worker.Run]. It lets a caller do something between Start and
// serving, such as announcing that the worker takes jobs only once its
// subscriptions are live.
func (w *Worker) Serve(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return w.Stop(context.Background())
	case <-w.svcDone:
		err := w.Stop(context.Background())
		return errors.Join(ErrServiceStopped, err)
	}
}

// Ready reports whether the worker is taking jobs: nil when it is started,
// not draining, its micro service is running, NATS is connected and, with
// the durable path, JetStream answers; otherwise [ErrNotStarted],
// [ErrDraining], [ErrServiceStopped], [ErrNotConnected] or (wrapped with
// the cause) [ErrJetStreamUnavailable]. Use it for /readyz.
func (w *Worker) Ready() error {
	w.mu.Lock()
	st, svc := w.state, w.svc
	w.mu.Unlock()
	switch {
	case st == stateNew:
		return ErrNotStarted
	case st != stateRunning:
		return ErrDraining
	case svc.Stopped():
		return ErrServiceStopped
	case !w.nc.IsConnected():
		return ErrNotConnected
	case w.durable != nil:
		return w.durable.health.get()
	}
	return nil
}

// InFlight returns the number of jobs running now, on both paths.
func (w *Worker) InFlight() int {
	w.mu.Lock()
	n := len(w.inflight)
	w.mu.Unlock()
	if w.durable != nil {
		n += int(w.durable.running.Load())
	}
	return n
}

// Stop drains the worker: it stops the micro service (the server stops
// routing jobs here, so queue-group peers get the new ones), runs every job
// already received, answers them, and returns. Draining is bounded by ctx
// and the drain timeout, whichever ends first; then jobs not yet started are
// answered SALESFORCE_UNAVAILABLE and jobs still running TIMEOUT (both
// retryable), the handler's context is cancelled, and their late results are
// discarded: no received job is left unanswered or answered twice.
//
// Durable jobs (see [WithDurable]) drain alike: the fetch loops stop within
// DurableConfig.FetchWait, jobs running are finished, kept, answered and
// acked; jobs received after the stop are naked unstarted, and jobs still
// running at the drain timeout are naked to another worker without a reply.
//
// Stop returns nil after a clean drain, an error wrapping
// context.DeadlineExceeded (or ctx's error) when it had to cut jobs short,
// or the NATS error from stopping the service. Calling it again waits for
// the first call and returns its result. Stop on a worker never started
// only marks it stopped. The NATS connection stays open.
func (w *Worker) Stop(ctx context.Context) error {
	w.mu.Lock()
	switch w.state {
	case stateNew:
		w.state = stateStopped
		w.mu.Unlock()
		close(w.stopped)
		w.cancelBase()
		return nil
	case stateDraining, stateStopped:
		w.mu.Unlock()
		select {
		case <-w.stopped:
			w.mu.Lock()
			defer w.mu.Unlock()
			return w.stopErr
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	w.state = stateDraining
	svc := w.svc
	w.mu.Unlock()

	err := w.drain(ctx, svc)

	w.mu.Lock()
	w.state = stateStopped
	w.stopErr = err
	w.mu.Unlock()
	close(w.quit)
	close(w.stopped)
	return err
}

func (w *Worker) drain(ctx context.Context, svc micro.Service) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, w.cfg.drainTimeout)
	defer cancel()
	w.log.Info().Int("in_flight", w.InFlight()).Dur("drain_timeout", w.cfg.drainTimeout).Msg("worker draining")

	// micro's Stop drains the endpoint subscriptions: it unsubscribes at the
	// server, and messages already delivered to this client are still
	// handed to the endpoint handler, so they are run and answered too.
	stopErr := svc.Stop()
	if w.durable != nil {
		// The fetch loops stop within FetchWait and nak what they receive
		// from now on; waitJobs below also waits for them.
		w.durable.stopFetching()
	}
	if stopErr != nil {
		stopErr = fmt.Errorf("worker: stopping micro service: %w", stopErr)
		w.log.Error().Err(stopErr).Msg("stopping micro service")
	}
	received := w.allReceived(ctx)

	var cut error
	select {
	case <-received:
		if err := w.waitJobs(ctx); err != nil {
			cut = err
		}
	case <-ctx.Done():
		cut = ctx.Err()
	}
	if cut != nil {
		w.abort(received)
		cut = fmt.Errorf("worker: drain cut short, remaining jobs answered as retryable failures: %w", cut)
	}
	w.cancelBase()
	// Push the last replies out before the caller closes the connection.
	flushCtx, flushCancel := context.WithTimeout(context.Background(), w.cfg.abortGrace)
	defer flushCancel()
	if w.nc.IsConnected() {
		if err := w.nc.FlushWithContext(flushCtx); err != nil {
			w.log.Warn().Err(err).Msg("flushing last replies")
		}
	}
	ev := w.log.Info()
	if cut != nil {
		ev = w.log.Warn().Err(cut)
	}
	ev.Dur("took", time.Since(start)).Msg("worker stopped")
	return errors.Join(stopErr, cut)
}

// allReceived returns a channel closed once every message that reached this
// client before the unsubscribe has been passed to its endpoint handler. The
// flush makes the server process the unsubscribe and send everything routed
// before it; the barrier then runs after each subscription's queue.
func (w *Worker) allReceived(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	if w.nc.IsConnected() {
		if err := w.nc.FlushWithContext(ctx); err != nil {
			w.log.Warn().Err(err).Msg("flushing before drain; some queued jobs may be cut short")
		}
	}
	if err := w.nc.Barrier(func() { close(done) }); err != nil {
		// Connection closed: nothing more can arrive.
		close(done)
	}
	return done
}

// waitJobs waits for all running jobs to finish or ctx to end.
func (w *Worker) waitJobs(ctx context.Context) error {
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// abort answers everything left once the drain timeout expired: jobs still
// running get a retryable TIMEOUT (their outcome is unknown), messages not
// yet started a retryable SALESFORCE_UNAVAILABLE (they never ran).
func (w *Worker) abort(received <-chan struct{}) {
	w.mu.Lock()
	w.aborting = true
	running := make([]*job, 0, len(w.inflight))
	for j := range w.inflight {
		running = append(running, j)
	}
	w.mu.Unlock()
	// The dispatcher answers the jobs still waiting for a slot.
	close(w.abortCh)
	for _, j := range running {
		w.answer(j, blocks.FailureReply(j.fallbackID(), errCutShort))
	}
	w.cancelBase()
	grace := time.NewTimer(w.cfg.abortGrace)
	defer grace.Stop()
	select {
	case <-received:
	case <-grace.C:
		w.log.Error().Msg("queued jobs still not answered after the drain timeout; giving up on them")
		return
	}
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-grace.C:
		w.log.Warn().Int("in_flight", w.InFlight()).Msg("jobs ignored cancellation; their late results will be discarded")
	}
}
