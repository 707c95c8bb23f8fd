package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// benchReport is the whole output of one `sfblocks bench`, as printed in
// the table and written as JSON.
type benchReport struct {
	Host      benchHost    `json:"host"`
	Scenarios []scenario   `json:"scenarios"`
	Runs      []*runResult `json:"runs"`
	Ratios    []benchRatio `json:"ratios,omitempty"`
	Floors    []benchFloor `json:"floors,omitempty"`
}

type benchHost struct {
	GOOS      string `json:"goos"`
	GOARCH    string `json:"goarch"`
	NumCPU    int    `json:"num_cpu"`
	GoVersion string `json:"go_version"`
}

// benchRatio compares the jobs/s of two runs of the same round.
type benchRatio struct {
	Name     string    `json:"name"`
	PerRound []float64 `json:"per_round"`
	Median   float64   `json:"median"`
}

// benchFloor is one of the floors and what was measured against it.
// It is reported, not asserted.
type benchFloor struct {
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

func newHost() benchHost {
	return benchHost{runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version()}
}

func (rep *benchReport) find(round int, scenario, path string) *runResult {
	for _, r := range rep.Runs {
		if r.Round == round && r.Scenario == scenario && r.Path == path {
			return r
		}
	}
	return nil
}

// ratio is jobs/s of (scA, pathA) over (scB, pathB), per round and median.
func (rep *benchReport) ratio(name, scA, pathA, scB, pathB string, rounds int) benchRatio {
	out := benchRatio{Name: name}
	for round := 1; round <= rounds; round++ {
		a, b := rep.find(round, scA, pathA), rep.find(round, scB, pathB)
		if a != nil && b != nil && b.JobsPerSec > 0 {
			out.PerRound = append(out.PerRound, a.JobsPerSec/b.JobsPerSec)
		}
	}
	out.Median = median(out.PerRound)
	return out
}

func (rep *benchReport) anyErrors(scenarios ...string) bool {
	for _, r := range rep.Runs {
		if r.Errors > 0 && slices.Contains(scenarios, r.Scenario) {
			return true
		}
	}
	return false
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// The floors preset's scenarios.
const (
	scSearch64 = "search-64"
	scInflight = "inflight"
	scScale1   = "scale-1"
	scScale4   = "scale-4"
	scRSS      = "rss"
)

func floorScenarios() []scenario {
	search := jobMix{search: 1}
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

// runFloors runs the floors preset: every scenario once per round, the
// compared runs alternating which goes first, then the floors.
func runFloors(ctx context.Context, env *benchEnv, cfg *benchConfig, onRun func(*runResult)) (*benchReport, error) {
	scs := floorScenarios()
	byName := map[string]scenario{}
	for _, sc := range scs {
		byName[sc.Name] = sc
	}
	rep := &benchReport{Host: newHost(), Scenarios: scs}
	type step struct{ sc, path string }
	for round := 1; round <= cfg.rounds; round++ {
		var steps []step
		for _, p := range rotate([]string{pathSync, pathBaseline, pathDurable}, round-1) {
			steps = append(steps, step{scSearch64, p})
		}
		steps = append(steps, step{scInflight, pathSync})
		for _, s := range rotate([]string{scScale1, scScale4}, round-1) {
			steps = append(steps, step{s, pathSync})
		}
		steps = append(steps, step{scRSS, pathSync})
		for _, st := range steps {
			r, err := runOne(ctx, env, byName[st.sc], st.path, round, cfg)
			if err != nil {
				return rep, fmt.Errorf("round %d, %s %s: %w", round, st.sc, st.path, err)
			}
			onRun(r)
			rep.Runs = append(rep.Runs, r)
		}
	}
	n := cfg.rounds
	syncBase := rep.ratio("search-64 sync/baseline", scSearch64, pathSync, scSearch64, pathBaseline, n)
	durSync := rep.ratio("search-64 durable/sync", scSearch64, pathDurable, scSearch64, pathSync, n)
	scale := rep.ratio("scale 4 workers/1 worker", scScale4, pathSync, scScale1, pathSync, n)
	rep.Ratios = []benchRatio{syncBase, durSync, scale}

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
	floor := func(name string, measured float64, op string, limit float64, unit string, errs bool, note string) benchFloor {
		pass := measured >= limit
		if op == "<=" {
			pass = measured <= limit
		}
		return benchFloor{Name: name, Measured: measured, Op: op, Limit: limit, Unit: unit, Pass: pass, Errors: errs, Note: note}
	}
	rep.Floors = []benchFloor{
		floor("sync Search, 0 latency, 64 clients: sfblocks/baseline jobs/s (median)", syncBase.Median, ">=", 0.7, "", rep.anyErrors(scSearch64), ""),
		floor("durable Search, same load: durable/sync jobs/s (median)", durSync.Median, ">=", 0.4, "", rep.anyErrors(scSearch64), ""),
		floor("100ms latency, 256 in flight, one worker: jobs/s (median; ideal 2560)", median(inflight), ">=", 2300, "jobs/s", rep.anyErrors(scInflight), ""),
		floor("100ms latency, 64 in flight per worker: 4 workers/1 worker jobs/s (median)", scale.Median, ">=", 3.6, "", rep.anyErrors(scScale1, scScale4), ""),
	}
	if len(rss) == 0 {
		rep.Floors = append(rep.Floors, benchFloor{Name: "1000 jobs in flight: peak RSS of the worker", Op: "<=", Limit: 100, Unit: "MB",
			Note: "n/a: VmHWM is read from /proc (Linux only)"})
	} else {
		rep.Floors = append(rep.Floors, floor("1000 jobs in flight: peak RSS of the worker (highest of the rounds)", slices.Max(rss), "<=", 100, "MB",
			rep.anyErrors(scRSS), fmt.Sprintf("most jobs in flight seen in the worker: %d", maxInFlight)))
	}
	return rep, nil
}

// writeTable prints the runs, the ratios and the floors.
func (rep *benchReport) writeTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "round\tscenario\tpath\tworkers\tclients\tlatency ms\tjobs/s\tp50 ms\tp90 ms\tp99 ms\terrors\tSF calls/job\ttoken reqs\tCPU us/job\tmax in flight\tpeak RSS MB\t")
	for _, r := range rep.Runs {
		rss := "n/a"
		if r.PeakRSSMB != nil {
			rss = fmt.Sprintf("%.1f", *r.PeakRSSMB)
		}
		errs := fmt.Sprint(r.Errors)
		if r.Errors > 0 {
			codes := make([]string, 0, len(r.ErrorCodes))
			for k, v := range r.ErrorCodes {
				codes = append(codes, fmt.Sprintf("%s:%d", k, v))
			}
			slices.Sort(codes)
			errs += " (" + strings.Join(codes, ",") + ")"
		}
		cpu := "n/a"
		if r.CPUPerJobUS != nil {
			cpu = fmt.Sprintf("%.0f", *r.CPUPerJobUS)
		}
		inflight := "-"
		if r.Path != pathBaseline {
			inflight = fmt.Sprint(r.MaxJobsInFlight)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%.0f\t%.0f\t%.2f\t%.2f\t%.2f\t%s\t%.2f\t%d\t%s\t%s\t%s\t\n",
			r.Round, r.Scenario, r.Path, r.Workers, r.Clients, r.LatencyMS, r.JobsPerSec, r.P50MS, r.P90MS, r.P99MS,
			errs, r.SFCallsPerJob, r.TokenRequests, cpu, inflight, rss)
	}
	tw.Flush()
	if len(rep.Ratios) > 0 {
		fmt.Fprintln(w)
	}
	for _, r := range rep.Ratios {
		per := make([]string, len(r.PerRound))
		for i, v := range r.PerRound {
			per[i] = fmt.Sprintf("%.3f", v)
		}
		fmt.Fprintf(w, "ratio %-26s median %.3f  (rounds: %s)\n", r.Name, r.Median, strings.Join(per, " "))
	}
	if len(rep.Floors) > 0 {
		fmt.Fprintln(w)
	}
	for _, f := range rep.Floors {
		verdict := "BELOW"
		if f.Pass {
			verdict = "PASS "
		}
		if f.Note != "" && strings.HasPrefix(f.Note, "n/a") {
			verdict = "n/a  "
		}
		extra := ""
		if f.Errors {
			extra = "  [runs had errors]"
		}
		if f.Note != "" {
			extra += "  (" + f.Note + ")"
		}
		unit := ""
		if f.Unit != "" {
			unit = " " + f.Unit
		}
		fmt.Fprintf(w, "%s %s: %.4g %s %.4g%s%s\n", verdict, f.Name, f.Measured, f.Op, f.Limit, unit, extra)
	}
}
