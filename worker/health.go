package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrJetStreamUnavailable is returned by [Worker.Ready] while a worker with
// the durable path cannot reach JetStream: its connection is up, but
// JetStream does not answer, or the jobs stream has no leader (a cluster's
// election in progress, or a majority of its nodes down). The worker keeps
// trying and is ready again by itself once JetStream answers.
var ErrJetStreamUnavailable = errors.New("worker: JetStream is unreachable")

// Probing JetStream for /readyz: how often while it answers, how soon again
// after a failure (so that the worker is ready again soon after an
// election), and how long one probe may take.
const (
	healthInterval      = 2 * time.Second
	healthRetryInterval = 500 * time.Millisecond
	healthTimeout       = 2 * time.Second
)

// jsHealth is the last JetStream probe's outcome.
type jsHealth struct {
	mu  sync.Mutex
	err error
}

func (h *jsHealth) get() error {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

func (h *jsHealth) set(err error) (changed bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	changed = (h.err == nil) != (err == nil)
	h.err = err
	return changed
}

// probe asks JetStream for the jobs stream's info: only its leader
// answers, so an answer says the worker can pull and settle jobs.
func (d *durable) probe() error {
	ctx, cancel := context.WithTimeout(context.Background(), healthTimeout)
	defer cancel()
	if !d.w.nc.IsConnected() {
		return nil // Ready reports ErrNotConnected already
	}
	if _, err := d.js.Stream(ctx, d.cfg.Stream); err != nil {
		state := "no answer"
		if transient(err) {
			state = "no leader answers (cluster election in progress, or a majority of its replicas down?)"
		}
		return fmt.Errorf("%w: stream %s: %s: %w", ErrJetStreamUnavailable, d.cfg.Stream, state, err)
	}
	return nil
}

// watchHealth probes JetStream until Stop, logging each change once.
func (d *durable) watchHealth() {
	defer d.w.wg.Done()
	for {
		err := d.probe()
		if d.health.set(err) {
			if err != nil {
				d.w.log.Warn().Err(err).Msg("JetStream unreachable: not ready (/readyz 503) until it answers again")
			} else {
				d.w.log.Info().Msg("JetStream reachable again: ready")
			}
		}
		wait := healthInterval
		if err != nil {
			wait = healthRetryInterval
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-d.stop:
			t.Stop()
			return
		}
	}
}
