package worker

import (
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sfblocks/sfblocks"
)

// Metrics are the worker's Prometheus collectors. Build them with
// [NewMetrics] and pass them with [WithMetrics]; several workers in one
// process may share one Metrics.
type Metrics struct {
	// Jobs counts answered jobs by block, status (ok, no_data, failed) and
	// error code ("" unless failed): sfblocks_jobs_total.
	Jobs *prometheus.CounterVec
	// Duration observes job durations in seconds by block, from receipt to
	// reply: sfblocks_job_duration_seconds.
	Duration *prometheus.HistogramVec
	// InFlight is the number of jobs running now: sfblocks_jobs_in_flight.
	InFlight prometheus.Gauge
	// Backlog is the number of synchronous jobs waiting for an in-flight
	// slot: sfblocks_worker_backlog_jobs.
	Backlog prometheus.Gauge
	// Overloaded counts synchronous jobs refused at once, unstarted,
	// because all slots were busy and the backlog was full:
	// sfblocks_worker_overloaded_total.
	Overloaded prometheus.Counter
	// SlowConsumer counts slow-consumer reports (messages dropped by the
	// NATS client because the pending limits were exceeded):
	// sfblocks_worker_slow_consumer_total.
	SlowConsumer prometheus.Counter
	// LateReplies counts job results discarded because the job had already
	// been answered at the end of the drain timeout:
	// sfblocks_worker_late_replies_total.
	LateReplies prometheus.Counter
	// DurableSettled counts durable messages settled, by block and action
	// (ack, nak, term): sfblocks_durable_settled_total.
	DurableSettled *prometheus.CounterVec
	// DurableRedelivered counts durable deliveries after the first
	// (JetStream delivery count above 1: a retry, a job waiting for another
	// worker's run or its account, or a worker that died or lost an ack),
	// by block: sfblocks_durable_redelivered_total.
	DurableRedelivered *prometheus.CounterVec
	// DurableReplayed counts durable jobs answered from their kept result
	// without calling Salesforce again, by block:
	// sfblocks_durable_replayed_total.
	DurableReplayed *prometheus.CounterVec
	// DurableRetried counts durable jobs handed back for another attempt
	// after a retryable failure, by block and error code:
	// sfblocks_durable_retried_total.
	DurableRetried *prometheus.CounterVec
	// DeadLettered counts jobs published to the dead-letter stream, by
	// block, path (durable, sync) and reason: sfblocks_dead_lettered_total.
	DeadLettered *prometheus.CounterVec
	// Reconciled counts Insert attempts whose outcome was unknown and that
	// were reconciled against Salesforce, by outcome (adopted: the record
	// was found and is the job's; none; ambiguous: several candidates;
	// error): sfblocks_reconciled_total.
	Reconciled *prometheus.CounterVec
	// Claimed counts what became of claims on jobs that write, by outcome
	// (taken; busy: another run held the job, which waited; conflict:
	// another job used the id): sfblocks_claims_total.
	Claimed *prometheus.CounterVec
	// Parked counts durable jobs moved aside until their account can run,
	// by block and why (breaker_open, saturated): sfblocks_durable_parked_total.
	Parked *prometheus.CounterVec
	// Saturated counts synchronous jobs refused unstarted because their
	// account held its share of the worker: sfblocks_account_saturated_total.
	Saturated prometheus.Counter
	// ReplyRefused counts jobs refused because their reply subject is one
	// the worker does not publish to, by path:
	// sfblocks_reply_refused_total.
	ReplyRefused *prometheus.CounterVec
	// Expired counts synchronous jobs answered TIMEOUT unstarted because
	// their deadline passed while they waited for a slot:
	// sfblocks_worker_expired_in_backlog_total.
	Expired prometheus.Counter
}

// NewMetrics creates the collectors and registers them on reg (not the
// global registry unless you pass it). A nil reg creates unregistered
// collectors. Registering twice on one registry fails with the registry's
// AlreadyRegisteredError.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sfblocks", Name: "jobs_total",
			Help: "Jobs answered, by block, status and error code.",
		}, []string{"block", "status", "code"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "sfblocks", Name: "job_duration_seconds",
			Help:    "Time from receiving a job to publishing its reply, by block.",
			Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"block"}),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "sfblocks", Name: "jobs_in_flight",
			Help: "Jobs being executed now.",
		}),
		Backlog: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "sfblocks", Subsystem: "worker", Name: "backlog_jobs",
			Help: "Synchronous jobs waiting for an in-flight slot.",
		}),
		Overloaded: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "sfblocks", Subsystem: "worker", Name: "overloaded_total",
			Help: "Synchronous jobs refused unstarted, with a retryable error, because all slots were busy and the backlog was full.",
		}),
		SlowConsumer: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "sfblocks", Subsystem: "worker", Name: "slow_consumer_total",
			Help: "Slow-consumer reports: jobs dropped by the NATS client because pending limits were exceeded.",
		}),
		LateReplies: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "sfblocks", Subsystem: "worker", Name: "late_replies_total",
			Help: "Job results discarded because the job was already answered when the drain timeout expired.",
		}),
		DurableSettled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sfblocks", Subsystem: "durable", Name: "settled_total",
			Help: "Durable job messages settled, by block and action (ack, nak, term).",
		}, []string{"block", "action"}),
		DurableRedelivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sfblocks", Subsystem: "durable", Name: "redelivered_total",
			Help: "Durable job deliveries after the first, by block: a retry after a retryable failure, a job waiting for another worker's run of it or for its account, or a redelivery after a worker died or an ack was lost. Retries alone are sfblocks_durable_retried_total.",
		}, []string{"block"}),
		DurableReplayed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sfblocks", Subsystem: "durable", Name: "replayed_total",
			Help: "Durable jobs answered from their kept result without calling Salesforce again, by block.",
		}, []string{"block"}),
		DurableRetried: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sfblocks", Subsystem: "durable", Name: "retried_total",
			Help: "Durable jobs handed back for another attempt after a retryable failure, by block and error code.",
		}, []string{"block", "code"}),
		DeadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sfblocks", Name: "dead_lettered_total",
			Help: "Jobs published to the dead-letter stream, by block, path (durable, sync) and reason.",
		}, []string{"block", "path", "reason"}),
		Reconciled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sfblocks", Name: "reconciled_total",
			Help: "Insert attempts with an unknown outcome reconciled against Salesforce, by outcome (adopted, none, ambiguous, error).",
		}, []string{"outcome"}),
		Claimed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sfblocks", Name: "claims_total",
			Help: "Claims on jobs that write to Salesforce, by outcome (taken, busy, conflict).",
		}, []string{"outcome"}),
		Parked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sfblocks", Subsystem: "durable", Name: "parked_total",
			Help: "Durable jobs moved to their account's parked subject until it can run, by block and why (breaker_open, saturated).",
		}, []string{"block", "why"}),
		Saturated: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "sfblocks", Subsystem: "account", Name: "saturated_total",
			Help: "Synchronous jobs refused unstarted because their account already held its share of the worker's in-flight slots.",
		}),
		ReplyRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sfblocks", Name: "reply_refused_total",
			Help: "Jobs refused, not run, because their reply subject is a system subject, one of the fleet's own, or outside the worker's reply subjects, by path.",
		}, []string{"path"}),
		Expired: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "sfblocks", Subsystem: "worker", Name: "expired_in_backlog_total",
			Help: "Synchronous jobs answered TIMEOUT unstarted because their deadline passed while they waited for a slot.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.Jobs, m.Duration, m.InFlight, m.Backlog, m.Overloaded, m.SlowConsumer, m.LateReplies,
		m.DurableSettled, m.DurableRedelivered, m.DurableReplayed, m.DurableRetried, m.DeadLettered, m.Reconciled, m.Claimed, m.Expired, m.ReplyRefused, m.Parked, m.Saturated} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("worker: registering metrics: %w", err)
		}
	}
	return m, nil
}

// outcomeMetrics caches the children of Jobs and Duration a worker updates,
// so recording an outcome costs a map read instead of hashing and
// validating label values on every job. The cache assumes the vectors'
// children are never deleted (the worker never does).
type outcomeMetrics struct {
	m        *Metrics
	duration map[sfblocks.Block]prometheus.Observer // fixed at init: read without a lock
	mu       sync.RWMutex
	jobs     map[outcomeKey]prometheus.Counter
}

type outcomeKey struct {
	block  sfblocks.Block
	status sfblocks.Status
	code   sfblocks.Code
}

func (o *outcomeMetrics) init(m *Metrics) {
	o.m = m
	o.duration = make(map[sfblocks.Block]prometheus.Observer, len(sfblocks.Blocks()))
	for _, b := range sfblocks.Blocks() {
		o.duration[b] = m.Duration.WithLabelValues(string(b))
	}
	o.jobs = make(map[outcomeKey]prometheus.Counter)
}

// observe counts one job outcome and its duration.
func (o *outcomeMetrics) observe(block sfblocks.Block, status sfblocks.Status, code sfblocks.Code, took time.Duration) {
	k := outcomeKey{block, status, code}
	o.mu.RLock()
	c, ok := o.jobs[k]
	o.mu.RUnlock()
	if !ok {
		c = o.m.Jobs.WithLabelValues(string(block), string(status), string(code))
		o.mu.Lock()
		o.jobs[k] = c
		o.mu.Unlock()
	}
	c.Inc()
	d, ok := o.duration[block]
	if !ok {
		d = o.m.Duration.WithLabelValues(string(block))
	}
	d.Observe(took.Seconds())
}
