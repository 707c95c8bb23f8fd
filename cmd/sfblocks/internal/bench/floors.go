package bench

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// floor is one of the performance floors and what was measured against
// it. It is reported, not asserted: a shared machine's noise would make an
// assertion flaky.
type floor struct {
	Name     string  `json:"name"`
	Measured float64 `json:"measured"`
	Op       string  `json:"op"` // ">=" or "<="
	Limit    float64 `json:"limit"`
	Unit     string  `json:"unit,omitempty"`
	Pass     bool    `json:"pass"`
	// Errors is true when a run behind the figure had failed jobs.
	Errors bool   `json:"errors"`
	Note   string `json:"note,omitempty"`
}

// The floors that issue 13 (a leaner hot path) set. The others (in
// flight, scale) come from the first wave's issue.
const (
	floorSyncBaseline = 0.85 // sync Search jobs/s over the baseline's
	floorDurableSync  = 0.6  // durable Search jobs/s over sync's
	floorRSSMB        = 64   // peak RSS of one worker, 1000 jobs in flight
)

// The floors preset's scenarios.
const (
	scSearch64 = "search-64"
	scInflight = "inflight"
	scScale1   = "scale-1"
	scScale4   = "scale-4"
	scRSS      = "rss"
)

func floorScenarios() []scenario {
	search := Mix{Search: 1}
	mk := func(name string, latency time.Duration, clients, workers, maxInFlight int) scenario {
		return scenario{Name: name, Latency: latency, LatencyMS: ms(latency), Clients: clients, Workers: workers,
			MaxInFlight: maxInFlight, mix: search, Mix: search.String()}
	}
	return []scenario{
		// Synchronous and durable Search with no simulated latency: the
		// worker's own cost per job, against the baseline's.
		mk(scSearch64, 0, 64, 1, 256),
		// 256 jobs in flight in one worker, 100ms each: ideally 2560/s.
		mk(scInflight, 100*time.Millisecond, 256, 1, 256),
		// Horizontal scaling: 64 in flight per worker, 1 then 4 workers.
		// 384 clients keep every worker's slots full (with 256, the queue
		// group's random spread leaves some slots idle while another
		// worker's jobs wait), so this measures capacity.
		mk(scScale1, 100*time.Millisecond, 384, 1, 64),
		mk(scScale4, 100*time.Millisecond, 384, 4, 64),
		// Memory with 1000 jobs in flight: a 1s latency keeps them all in
		// flight at 1000 jobs/s, which two cores sustain (100ms would need
		// 10,000 jobs/s).
		mk(scRSS, time.Second, 1000, 1, 1000),
	}
}

// floorStep is one run of a round of the floors preset.
type floorStep struct {
	scenario string
	path     Path
}

// floorSteps is the order of the runs of one round (1-based): the runs
// that are compared alternate which goes first from round to round.
func floorSteps(round int) []floorStep {
	var steps []floorStep
	for _, p := range rotate([]Path{PathSync, PathBaseline, PathDurable}, round-1) {
		steps = append(steps, floorStep{scSearch64, p})
	}
	steps = append(steps, floorStep{scInflight, PathSync})
	for _, s := range rotate([]string{scScale1, scScale4}, round-1) {
		steps = append(steps, floorStep{s, PathSync})
	}
	return append(steps, floorStep{scRSS, PathSync})
}

// runFloors runs the floors preset: every scenario once per round, then
// the floors.
func runFloors(ctx context.Context, e *env, cfg *Config, onRun func(*runResult)) (*report, error) {
	scs := floorScenarios()
	byName := map[string]scenario{}
	for _, sc := range scs {
		byName[sc.Name] = sc
	}
	rep := &report{Host: newHost(), Scenarios: scs}
	for round := 1; round <= cfg.Rounds; round++ {
		for _, st := range floorSteps(round) {
			r, err := runOne(ctx, e, byName[st.scenario], st.path, round, cfg)
			if err != nil {
				return rep, fmt.Errorf("round %d, %s %s: %w", round, st.scenario, st.path, err)
			}
			onRun(r)
			rep.Runs = append(rep.Runs, r)
		}
	}
	rep.judgeFloors(cfg.Rounds)
	return rep, nil
}

// judgeFloors sets the report's ratios and floors from its runs.
func (rep *report) judgeFloors(rounds int) {
	syncBase := rep.ratio("search-64 sync/baseline", scSearch64, PathSync, scSearch64, PathBaseline, rounds)
	durSync := rep.ratio("search-64 durable/sync", scSearch64, PathDurable, scSearch64, PathSync, rounds)
	scale := rep.ratio("scale 4 workers/1 worker", scScale4, PathSync, scScale1, PathSync, rounds)
	rep.Ratios = []ratio{syncBase, durSync, scale}

	var inflight, rss []float64
	maxInFlight := 0
	for _, r := range rep.Runs {
		switch r.Scenario {
		case scInflight:
			inflight = append(inflight, r.JobsPerSec)
		case scRSS:
			if r.PeakRSSMB != nil {
				rss = append(rss, *r.PeakRSSMB)
			}
			maxInFlight = max(maxInFlight, r.MaxJobsInFlight)
		}
	}
	judge := func(name string, measured float64, op string, limit float64, unit string, errs bool, note string) floor {
		pass := measured >= limit
		if op == "<=" {
			pass = measured <= limit
		}
		return floor{Name: name, Measured: measured, Op: op, Limit: limit, Unit: unit, Pass: pass, Errors: errs, Note: note}
	}
	rep.Floors = []floor{
		judge("sync Search, 0 latency, 64 clients: sfblocks/baseline jobs/s (median)", syncBase.Median, ">=", floorSyncBaseline, "", rep.anyErrors(scSearch64), ""),
		judge("durable Search, same load: durable/sync jobs/s (median)", durSync.Median, ">=", floorDurableSync, "", rep.anyErrors(scSearch64), ""),
		judge("100ms latency, 256 in flight, one worker: jobs/s (median; ideal 2560)", median(inflight), ">=", 2300, "jobs/s", rep.anyErrors(scInflight), ""),
		judge("100ms latency, 64 in flight per worker: 4 workers/1 worker jobs/s (median)", scale.Median, ">=", 3.6, "", rep.anyErrors(scScale1, scScale4), ""),
	}
	if len(rss) == 0 {
		rep.Floors = append(rep.Floors, floor{Name: "1000 jobs in flight: peak RSS of the worker", Op: "<=", Limit: floorRSSMB, Unit: "MB",
			Note: "n/a: VmHWM is read from /proc (Linux only)"})
	} else {
		rep.Floors = append(rep.Floors, judge("1000 jobs in flight: peak RSS of the worker (highest of the rounds)", slices.Max(rss), "<=", floorRSSMB, "MB",
			rep.anyErrors(scRSS), fmt.Sprintf("most jobs in flight seen in the worker: %d", maxInFlight)))
	}
}
