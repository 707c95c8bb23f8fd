package bench

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files of the report")

// fixtureReport is a report with every kind of row: the floors preset's
// scenarios over two rounds and a custom one, runs with and without
// errors, /proc figures and the baseline's blanks, ratios and floors.
func fixtureReport() *report {
	f := func(v float64) *float64 { return &v }
	scs := floorScenarios()
	rep := &report{Host: host{"linux", "amd64", 2, "go1.26"}, Scenarios: append(scs, scenario{Name: "custom",
		Latency: 5 * time.Millisecond, LatencyMS: 5, Clients: 8, Workers: 2, MaxInFlight: 16, mix: Mix{0.75}, Mix: Mix{0.75}.String()})}
	i := 0
	for round := 1; round <= 2; round++ {
		for _, sc := range scs {
			for _, p := range []Path{PathSync, PathBaseline, PathDurable} {
				if sc.Name != scSearch64 && p != PathSync {
					continue
				}
				i++
				r := &runResult{Round: round, Scenario: sc.Name, Path: p, Workers: sc.Workers, Clients: sc.Clients, MaxInFlight: sc.MaxInFlight,
					LatencyMS: sc.LatencyMS, Mix: sc.Mix, WindowS: 2.0001, Jobs: int64(1000 * i), JobsPerSec: 500.5 * float64(i), P50MS: 1.234 * float64(i),
					P90MS: 2.5 * float64(i), P99MS: 9.999 * float64(i), SFCallsPerJob: 1.0049, TokenRequests: int64(i % 3), MaxJobsInFlight: i * 7}
				if p == PathBaseline {
					r.Workers = 0
				}
				if i%4 == 0 {
					r.Errors = 3
					r.ErrorCodes = map[string]int64{"TIMEOUT": 2, "HTTP_503": 1}
				}
				if i%5 != 0 {
					r.PeakRSSMB = f(12.345 * float64(i))
					r.CPUPerJobUS = f(123.456 * float64(i))
				}
				rep.Runs = append(rep.Runs, r)
			}
		}
	}
	rep.Ratios = []ratio{{"search-64 sync/baseline", []float64{0.5, 0.66666}, 0.58333}, {"x", nil, 0}}
	rep.Floors = []floor{{Name: "a", Measured: 0.81234, Op: ">=", Limit: 0.7, Pass: true}, {Name: "b", Measured: 2200.5, Op: ">=", Limit: 2300, Unit: "jobs/s", Errors: true},
		{Name: "c", Op: "<=", Limit: 100, Unit: "MB", Note: "n/a: VmHWM"}, {Name: "d", Measured: 44.4, Op: "<=", Limit: 100, Unit: "MB", Pass: true, Note: "most jobs in flight seen in the worker: 1000"}}
	return rep
}

// TestReportFormats holds the table and the JSON to golden files made
// with the command's output before the bench became a package: scripts
// and people read both, so a change must be deliberate (go test -update).
func TestReportFormats(t *testing.T) {
	t.Parallel()
	tests := []struct {
		format, golden string
	}{
		{FormatTable, "report.table.golden"},
		// The JSON file holds the same indentation as stdout, without the
		// newline that Fprintln adds.
		{FormatJSON, "report.json.golden"},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			if err := fixtureReport().write(&buf, tt.format); err != nil {
				t.Fatal(err)
			}
			got := buf.String()
			if tt.format == FormatJSON {
				got = strings.TrimSuffix(got, "\n")
			}
			checkGolden(t, tt.golden, got)
		})
	}
}

func TestReportJSONFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "bench.json")
	if err := fixtureReport().writeJSONFile(path); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "report.json.golden", strings.TrimSuffix(string(data), "\n"))

	err = fixtureReport().writeJSONFile(filepath.Join(t.TempDir(), "missing", "bench.json"))
	if err == nil || !strings.Contains(err.Error(), "--json") {
		t.Errorf("writing into a missing directory: %v, want an error naming --json", err)
	}
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s changed; got:\n%s\nwant:\n%s", name, got, want)
	}
}

func TestJudgeFloors(t *testing.T) {
	t.Parallel()
	rss := func(v float64) *float64 { return &v }
	// run makes a run of round 1 with the given jobs/s (and RSS).
	run := func(sc string, path Path, jps float64, errs int64, peak *float64) *runResult {
		return &runResult{Round: 1, Scenario: sc, Path: path, JobsPerSec: jps, Errors: errs, PeakRSSMB: peak, MaxJobsInFlight: 1000}
	}
	tests := []struct {
		name     string
		runs     []*runResult
		wantPass []bool
		wantNA   bool // the RSS floor is n/a
		wantErrs []bool
	}{
		{
			name: "all pass",
			runs: []*runResult{run(scSearch64, PathSync, 860, 0, nil), run(scSearch64, PathBaseline, 1000, 0, nil), run(scSearch64, PathDurable, 520, 0, nil),
				run(scInflight, PathSync, 2400, 0, nil), run(scScale1, PathSync, 500, 0, nil), run(scScale4, PathSync, 1900, 0, nil), run(scRSS, PathSync, 900, 0, rss(63))},
			wantPass: []bool{true, true, true, true, true},
			wantErrs: []bool{false, false, false, false, false},
		},
		{
			// Issue 13's floors: 0.85, 0.6 and 64 MB, not the first wave's
			// 0.7, 0.4 and 100 MB.
			name: "below issue 13's floors",
			runs: []*runResult{run(scSearch64, PathSync, 840, 0, nil), run(scSearch64, PathBaseline, 1000, 0, nil), run(scSearch64, PathDurable, 500, 0, nil),
				run(scInflight, PathSync, 2400, 0, nil), run(scScale1, PathSync, 500, 0, nil), run(scScale4, PathSync, 1900, 0, nil), run(scRSS, PathSync, 900, 0, rss(65))},
			wantPass: []bool{false, false, true, true, false},
			wantErrs: []bool{false, false, false, false, false},
		},
		{
			name: "all below, with errors",
			runs: []*runResult{run(scSearch64, PathSync, 600, 1, nil), run(scSearch64, PathBaseline, 1000, 0, nil), run(scSearch64, PathDurable, 200, 0, nil),
				run(scInflight, PathSync, 2000, 0, nil), run(scScale1, PathSync, 500, 0, nil), run(scScale4, PathSync, 1500, 2, nil), run(scRSS, PathSync, 900, 0, rss(120))},
			wantPass: []bool{false, false, false, false, false},
			wantErrs: []bool{true, true, false, true, false},
		},
		{
			name: "no /proc",
			runs: []*runResult{run(scSearch64, PathSync, 860, 0, nil), run(scSearch64, PathBaseline, 1000, 0, nil), run(scSearch64, PathDurable, 520, 0, nil),
				run(scInflight, PathSync, 2400, 0, nil), run(scScale1, PathSync, 500, 0, nil), run(scScale4, PathSync, 1900, 0, nil), run(scRSS, PathSync, 900, 0, nil)},
			wantPass: []bool{true, true, true, true, false},
			wantNA:   true,
			wantErrs: []bool{false, false, false, false, false},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rep := &report{Runs: tt.runs}
			rep.judgeFloors(1)
			if len(rep.Ratios) != 3 || len(rep.Floors) != 5 {
				t.Fatalf("%d ratios and %d floors, want 3 and 5", len(rep.Ratios), len(rep.Floors))
			}
			for i, f := range rep.Floors {
				if f.Pass != tt.wantPass[i] || f.Errors != tt.wantErrs[i] {
					t.Errorf("floor %q: pass %v errors %v, want %v %v (measured %v)", f.Name, f.Pass, f.Errors, tt.wantPass[i], tt.wantErrs[i], f.Measured)
				}
			}
			if na := strings.HasPrefix(rep.Floors[4].Note, "n/a"); na != tt.wantNA {
				t.Errorf("RSS floor note %q, want n/a %v", rep.Floors[4].Note, tt.wantNA)
			}
		})
	}
}

func TestRatios(t *testing.T) {
	t.Parallel()
	rep := &report{}
	for round, jps := range [][3]float64{{800, 1000, 400}, {900, 1000, 300}, {700, 1000, 500}} {
		for i, p := range []Path{PathSync, PathBaseline, PathDurable} {
			rep.Runs = append(rep.Runs, &runResult{Round: round + 1, Scenario: "custom", Path: p, JobsPerSec: jps[i]})
		}
	}
	tests := []struct {
		paths []Path
		want  map[string]float64 // name → median
	}{
		{[]Path{PathSync, PathBaseline}, map[string]float64{"sync/baseline": 0.8}},
		{[]Path{PathDurable, PathSync}, map[string]float64{"durable/sync": 0.5}},
		{[]Path{PathBaseline, PathDurable, PathSync}, map[string]float64{"sync/baseline": 0.8, "durable/sync": 0.5, "durable/baseline": 0.4}},
		{[]Path{PathSync}, map[string]float64{}},
	}
	for _, tt := range tests {
		got := customRatios(rep, "custom", tt.paths, 3)
		if len(got) != len(tt.want) {
			t.Errorf("paths %v: ratios %+v, want %v", tt.paths, got, tt.want)
			continue
		}
		for _, r := range got {
			if w, ok := tt.want[r.Name]; !ok || r.Median < w-1e-9 || r.Median > w+1e-9 || len(r.PerRound) != 3 {
				t.Errorf("paths %v: ratio %+v, want median %v over 3 rounds", tt.paths, r, w)
			}
		}
	}
}

func TestStatistics(t *testing.T) {
	t.Parallel()
	lat := &loadResult{errors: map[string]int64{"TIMEOUT": 3}}
	for i := 1; i <= 100; i++ {
		lat.latencies = append(lat.latencies, time.Duration(i)*time.Millisecond)
	}
	for _, tt := range []struct {
		p    float64
		want time.Duration
	}{{0, time.Millisecond}, {0.5, 50 * time.Millisecond}, {0.9, 90 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}} {
		if got := lat.percentile(tt.p); got != tt.want {
			t.Errorf("percentile(%v) = %v, want %v", tt.p, got, tt.want)
		}
	}
	if got := lat.jobs(); got != 103 {
		t.Errorf("jobs() = %d, want 100 completed + 3 failed", got)
	}
	if got := (&loadResult{}).percentile(0.5); got != 0 {
		t.Errorf("percentile of nothing = %v, want 0", got)
	}

	for _, tt := range []struct {
		v    []float64
		want float64
	}{{nil, 0}, {[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tt.v); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.v, got, tt.want)
		}
	}

	for _, tt := range []struct {
		n    int
		want []string
	}{{0, []string{"a", "b", "c"}}, {1, []string{"b", "c", "a"}}, {4, []string{"b", "c", "a"}}} {
		if got := rotate([]string{"a", "b", "c"}, tt.n); !slices.Equal(got, tt.want) {
			t.Errorf("rotate(abc, %d) = %v, want %v", tt.n, got, tt.want)
		}
	}
}

func TestFloorStepsAlternate(t *testing.T) {
	t.Parallel()
	first := func(round int) Path { return floorSteps(round)[0].path }
	if first(1) != PathSync || first(2) != PathBaseline || first(3) != PathDurable {
		t.Errorf("search-64 goes first with %s, %s, %s in rounds 1-3; want sync, baseline, durable", first(1), first(2), first(3))
	}
	for round := 1; round <= 3; round++ {
		steps := floorSteps(round)
		seen := map[string]int{}
		for _, s := range steps {
			seen[s.scenario]++
		}
		if len(steps) != 7 || seen[scSearch64] != 3 || seen[scScale1] != 1 || seen[scScale4] != 1 || seen[scInflight] != 1 || seen[scRSS] != 1 {
			t.Errorf("round %d: steps %v, want the 7 runs of the preset", round, steps)
		}
	}
	// The JSON of a scenario is the preset's description: keep it.
	data, _ := json.Marshal(floorScenarios()[0])
	if want := `{"name":"search-64","latency_ms":0,"clients":64,"workers":1,"max_in_flight":256,"mix":"search=1,insert=0"}`; string(data) != want {
		t.Errorf("scenario JSON %s, want %s", data, want)
	}
}
