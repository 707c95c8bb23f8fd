package worker

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks"
)

// How a synchronous job reaches a goroutine, and what happens when the
// worker is saturated.
//
// micro calls an endpoint's handler sequentially, so the handler must never
// wait for long: while it waits, the subscription's messages pile up in the
// NATS client's pending buffer, and past the pending limits the client drops
// them, which the caller only sees as a timeout. So the handler decides at
// once:
//
//   - a slot is free and no job is waiting: the job starts now;
//   - all slots are busy and fewer than the backlog bound are waiting: the
//     job joins the backlog, a FIFO that the dispatcher goroutine feeds into
//     slots as they free up (the same semaphore the durable path uses, so the
//     in-flight limit covers both paths);
//   - the backlog is full: the job is answered at once with errOverloaded,
//     retryable, without running.
//
// Jobs run on a pool of long-lived goroutines rather than one new goroutine
// per job: a warm goroutine keeps its grown stack, and a new goroutine per
// job paid for growing it again (about 5% of a job's CPU at full load). A
// goroutine idle for poolIdle exits, so a burst leaves nothing behind.
//
// A job's goroutine waits for Salesforce at the bottom of its stack, so the
// frames on the way to net/http's wait decide how big that stack is: once
// they pass 8 KB (less the runtime's guard of about 1 KB) it doubles to
// 16 KB, for each of up to --max-in-flight calls, and it never shrinks while
// the call waits. So the functions on that path (run, runTask, shareSearch,
// salesforce's Client.send) keep their cold parts, the ledger's steps, a
// shared Search's key and follower, a request's building and reading, in
// functions of their own: about 6.4 KB of frames on the way to the wait
// instead of 8.3 KB, which took the stacks at 1000 calls in flight from
// 25 MB to 17-19 MB. A new frame on that path costs its size 1000 times.

// poolIdle is how long a pool goroutine waits for its next job before it
// exits.
const poolIdle = 10 * time.Second

// overloadError answers a job refused because the worker is saturated.
func overloadError(maxInFlight, backlog int) *sfblocks.Error {
	return &sfblocks.Error{
		Code: sfblocks.CodeSalesforceUnavailable,
		Message: fmt.Sprintf("worker saturated: all %d in-flight slots are busy and %d jobs are already waiting; "+
			"the job was not started: retry it, or add workers", maxInFlight, backlog),
		Retryable: true,
	}
}

// endpoint is the micro handler of one block; it never waits for a slot
// (see above).
func (w *Worker) endpoint(block sfblocks.Block) micro.HandlerFunc {
	return func(req micro.Request) {
		if w.cfg.onReceive != nil {
			w.cfg.onReceive()
		}
		if subject := req.Reply(); subject != "" {
			if why := w.replies.check(subject); why != "" {
				// Not run, and not answered: answering is what it asked for.
				w.m.ReplyRefused.WithLabelValues(sfblocks.PathSync).Inc()
				w.log.Warn().Str("block", string(block)).Str("path", sfblocks.PathSync).Msg(refusedReply(subject, why))
				return
			}
		}
		j := &job{block: block, req: req, received: time.Now()}
		select {
		case <-w.abortCh:
			w.answer(j, blocks.FailureReply(j.fallbackID(), errNotStarted))
			return
		default:
		}
		if w.waiting.Load() == 0 {
			select {
			case w.sem <- struct{}{}:
				w.overloaded.Store(false)
				w.start(j)
				return
			default:
			}
		}
		if int(w.waiting.Add(1)) > w.cfg.backlog {
			w.waiting.Add(-1)
			w.refuse(j)
			return
		}
		w.m.Backlog.Inc()
		w.wg.Add(1) // done when the job has run or been answered
		w.backlog <- j
	}
}

// refuse answers a job the saturated worker cannot take.
func (w *Worker) refuse(j *job) {
	w.m.Overloaded.Inc()
	if !w.overloaded.Swap(true) {
		// Once per episode; every refused job still has its own outcome line.
		w.log.Warn().Int("max_in_flight", w.cfg.maxInFlight).Int("backlog", w.cfg.backlog).
			Msg("worker saturated: refusing new jobs with a retryable error until a slot frees up; add workers or raise --max-in-flight")
	}
	w.answer(j, blocks.FailureReply(j.fallbackID(), w.errOverloaded))
}

// dispatch feeds waiting jobs into slots, in arrival order, until quit is
// closed. After the drain timeout it answers them as not started instead.
func (w *Worker) dispatch() {
	for {
		select {
		case j := <-w.backlog:
			select {
			case w.sem <- struct{}{}:
				w.leaveBacklog()
				w.startQueued(j)
			case <-w.abortCh:
				w.leaveBacklog()
				w.answer(j, blocks.FailureReply(j.fallbackID(), errNotStarted))
				w.wg.Done()
			}
		case <-w.quit:
			// Stop waited for every received job (or gave up on them after
			// the abort grace); answer any straggler rather than drop it.
			for {
				select {
				case j := <-w.backlog:
					w.leaveBacklog()
					w.answer(j, blocks.FailureReply(j.fallbackID(), errNotStarted))
					w.wg.Done()
				default:
					return
				}
			}
		}
	}
}

func (w *Worker) leaveBacklog() {
	w.waiting.Add(-1)
	w.m.Backlog.Dec()
}

// start runs a job holding a freshly taken slot.
func (w *Worker) start(j *job) {
	w.mu.Lock()
	if w.aborting {
		w.mu.Unlock()
		<-w.sem
		w.answer(j, blocks.FailureReply(j.fallbackID(), errNotStarted))
		return
	}
	w.inflight[j] = struct{}{}
	w.wg.Add(1)
	w.mu.Unlock()
	w.launch(j)
}

// startQueued is start for a job from the backlog, already counted in wg.
func (w *Worker) startQueued(j *job) {
	w.mu.Lock()
	if w.aborting {
		w.mu.Unlock()
		<-w.sem
		w.answer(j, blocks.FailureReply(j.fallbackID(), errNotStarted))
		w.wg.Done()
		return
	}
	w.inflight[j] = struct{}{}
	w.mu.Unlock()
	w.launch(j)
}

// launch hands a registered job to an idle pool goroutine, or to a new one.
func (w *Worker) launch(j *job) {
	w.m.InFlight.Inc()
	w.stats[j.block].inFlight.Add(1)
	select {
	case w.idle <- j:
	default:
		go w.poolLoop(j)
	}
}

// poolLoop runs j, then the jobs handed to it, until it has been idle for
// poolIdle or the worker stopped.
func (w *Worker) poolLoop(j *job) {
	var t *time.Timer
	for {
		w.run(j)
		if t == nil {
			t = time.NewTimer(poolIdle)
		} else {
			t.Reset(poolIdle)
		}
		select {
		case j = <-w.idle:
		case <-t.C:
			return
		case <-w.quit:
			t.Stop()
			return
		}
	}
}
