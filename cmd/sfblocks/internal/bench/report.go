package bench

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// report is the whole output of one bench, as printed in the table and
// written as JSON. Its JSON field names are what scripts read: keep them.
type report struct {
	Host      host         `json:"host"`
	Scenarios []scenario   `json:"scenarios"`
	Runs      []*runResult `json:"runs"`
	Ratios    []ratio      `json:"ratios,omitempty"`
	Floors    []floor      `json:"floors,omitempty"`
}

// host says where the bench ran, since its figures only compare on the
// same machine.
type host struct {
	GOOS      string `json:"goos"`
	GOARCH    string `json:"goarch"`
	NumCPU    int    `json:"num_cpu"`
	GoVersion string `json:"go_version"`
}

func newHost() host {
	return host{runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version()}
}

// scenario is one load shape; a run is a scenario driven through one path.
type scenario struct {
	Name        string        `json:"name"`
	Latency     time.Duration `json:"-"`
	LatencyMS   float64       `json:"latency_ms"`
	Clients     int           `json:"clients"`
	Workers     int           `json:"workers"`
	MaxInFlight int           `json:"max_in_flight"`
	Mix         string        `json:"mix"`
	// IdenticalSearches: every search job was the same statement (see
	// distinctSearchJob), so the workers' shared searches could answer
	// several with one call.
	IdenticalSearches bool `json:"identical_searches,omitempty"`
	mix               Mix
}

// runResult is one run's measurements.
type runResult struct {
	Round         int              `json:"round"`
	Scenario      string           `json:"scenario"`
	Path          Path             `json:"path"`
	Workers       int              `json:"workers"`
	Clients       int              `json:"clients"`
	MaxInFlight   int              `json:"max_in_flight"`
	LatencyMS     float64          `json:"latency_ms"`
	Mix           string           `json:"mix"`
	WindowS       float64          `json:"window_s"`
	Jobs          int64            `json:"jobs"`
	JobsPerSec    float64          `json:"jobs_per_s"`
	P50MS         float64          `json:"p50_ms"`
	P90MS         float64          `json:"p90_ms"`
	P99MS         float64          `json:"p99_ms"`
	Errors        int64            `json:"errors"`
	ErrorCodes    map[string]int64 `json:"error_codes,omitempty"`
	SFCallsPerJob float64          `json:"sf_calls_per_job"`
	TokenRequests int64            `json:"token_requests"`
	// PeakRSSMB is the highest VmHWM among the run's worker (or baseline)
	// processes, in MiB; null where /proc is not available.
	PeakRSSMB *float64 `json:"peak_rss_mb"`
	// CPUPerJobUS is the CPU time (user + system) the run's worker (or
	// baseline) processes used in the window, per job, in microseconds;
	// null where /proc is not available. The load generator, NATS server
	// and simulator (the bench process) are not in it.
	CPUPerJobUS *float64 `json:"cpu_us_per_job"`
	// MaxJobsInFlight is the highest sfblocks_jobs_in_flight a worker
	// reported while sampled during the window (worker paths only).
	MaxJobsInFlight int `json:"max_jobs_in_flight,omitempty"`
	// Bursts and BurstSize describe a run of the cost preset: Bursts
	// bursts of BurstSize concurrent jobs; SFCallsPerBurst is the
	// simulator's API calls per burst.
	Bursts          int     `json:"bursts,omitempty"`
	BurstSize       int     `json:"burst_size,omitempty"`
	SFCallsPerBurst float64 `json:"sf_calls_per_burst,omitempty"`
}

// ratio compares the jobs/s of two runs of the same round. Both runs of a
// round share the machine's mood of the moment, so their ratio is steadier
// than either figure.
type ratio struct {
	Name     string    `json:"name"`
	PerRound []float64 `json:"per_round"`
	Median   float64   `json:"median"`
}

func (rep *report) find(round int, scenario string, path Path) *runResult {
	for _, r := range rep.Runs {
		if r.Round == round && r.Scenario == scenario && r.Path == path {
			return r
		}
	}
	return nil
}

// ratio is jobs/s of (scA, pathA) over (scB, pathB), per round and median.
func (rep *report) ratio(name, scA string, pathA Path, scB string, pathB Path, rounds int) ratio {
	out := ratio{Name: name}
	for round := 1; round <= rounds; round++ {
		a, b := rep.find(round, scA, pathA), rep.find(round, scB, pathB)
		if a != nil && b != nil && b.JobsPerSec > 0 {
			out.PerRound = append(out.PerRound, a.JobsPerSec/b.JobsPerSec)
		}
	}
	out.Median = median(out.PerRound)
	return out
}

func (rep *report) anyErrors(scenarios ...string) bool {
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

// writeTable prints the runs, the ratios and the floors.
func (rep *report) writeTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "round\tscenario\tpath\tworkers\tclients\tlatency ms\tjobs/s\tp50 ms\tp90 ms\tp99 ms\terrors\tSF calls/job\ttoken reqs\tCPU us/job\tmax in flight\tpeak RSS MB\tSF calls/burst\t")
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
		if r.Path != PathBaseline {
			inflight = fmt.Sprint(r.MaxJobsInFlight)
		}
		perBurst := "-"
		if r.Bursts > 0 {
			perBurst = fmt.Sprintf("%.2f (%d×%d)", r.SFCallsPerBurst, r.Bursts, r.BurstSize)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%.0f\t%.0f\t%.2f\t%.2f\t%.2f\t%s\t%.3f\t%d\t%s\t%s\t%s\t%s\t\n",
			r.Round, r.Scenario, r.Path, r.Workers, r.Clients, r.LatencyMS, r.JobsPerSec, r.P50MS, r.P90MS, r.P99MS,
			errs, r.SFCallsPerJob, r.TokenRequests, cpu, inflight, rss, perBurst)
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
