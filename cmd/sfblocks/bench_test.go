package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// buildBinary builds sfblocks into a temporary directory: bench starts its
// workers and baseline as processes of this binary (in a test,
// os.Executable is the test binary).
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sfblocks")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func TestBenchEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts worker processes")
	}
	bin := buildBinary(t)
	jsonPath := filepath.Join(t.TempDir(), "bench.json")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code, out, errOut := runCmd(t, ctx, "bench", "--binary", bin, "--path", "sync,durable,baseline",
		"--duration", "1s", "--warmup", "200ms", "--rounds", "1", "--clients", "4",
		"--mix", "search=0.75,insert=0.25", "--json", jsonPath)
	if code != 0 {
		t.Fatalf("bench exited %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	for _, col := range []string{"jobs/s", "p50 ms", "p90 ms", "p99 ms", "errors", "SF calls/job", "token reqs", "peak RSS MB",
		"ratio sync/baseline", "ratio durable/sync"} {
		if !strings.Contains(out, col) {
			t.Errorf("table lacks %q:\n%s", col, out)
		}
	}

	data, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Runs   []map[string]any `json:"runs"`
		Ratios []struct {
			Name   string  `json:"name"`
			Median float64 `json:"median"`
		} `json:"ratios"`
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatalf("--json output: %v\n%s", err, data)
	}
	seen := map[string]bool{}
	for _, r := range rep.Runs {
		path, _ := r["path"].(string)
		seen[path] = true
		for _, field := range []string{"jobs_per_s", "p50_ms", "p90_ms", "p99_ms", "errors", "sf_calls_per_job", "token_requests", "peak_rss_mb", "jobs"} {
			if _, ok := r[field]; !ok {
				t.Errorf("%s run lacks %q: %v", path, field, r)
			}
		}
		if jps, _ := r["jobs_per_s"].(float64); jps <= 0 {
			t.Errorf("%s run: jobs_per_s %v, want > 0", path, r["jobs_per_s"])
		}
		if errs, _ := r["errors"].(float64); errs != 0 {
			t.Errorf("%s run had %v failed jobs: %v", path, errs, r["error_codes"])
		}
		// Every job makes exactly one Salesforce call (search: one query
		// page; insert: one upsert), give or take jobs at the window edges.
		if c, _ := r["sf_calls_per_job"].(float64); c < 0.5 || c > 1.5 {
			t.Errorf("%s run: %v Salesforce calls per job, want about 1", path, c)
		}
	}
	for _, p := range []string{pathSync, pathDurable, pathBaseline} {
		if !seen[p] {
			t.Errorf("no %s run in the report", p)
		}
	}
	if len(rep.Ratios) != 3 {
		t.Errorf("ratios %+v, want sync/baseline, durable/sync and durable/baseline", rep.Ratios)
	}
}

func TestBenchHelpers(t *testing.T) {
	mixes := []struct {
		given      string
		wantSearch float64
		wantErr    bool
	}{
		{"search=1", 1, false},
		{"search=0.8,insert=0.2", 0.8, false},
		{"search=3, insert=1", 0.75, false},
		{"insert=1", 0, false},
		{"search=0,insert=0", 0, true},
		{"update=1", 0, true},
		{"search=-1", 0, true},
		{"search", 0, true},
	}
	for _, tt := range mixes {
		m, err := parseMix(tt.given)
		if (err != nil) != tt.wantErr || (!tt.wantErr && m.search != tt.wantSearch) {
			t.Errorf("parseMix(%q) = %v, %v; want search share %v, error %v", tt.given, m.search, err, tt.wantSearch, tt.wantErr)
		}
	}

	lat := &loadResult{}
	for i := 1; i <= 100; i++ {
		lat.latencies = append(lat.latencies, time.Duration(i)*time.Millisecond)
	}
	for _, tt := range []struct {
		p    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.9, 90 * time.Millisecond}, {0.99, 99 * time.Millisecond}} {
		if got := lat.percentile(tt.p); got != tt.want {
			t.Errorf("percentile(%v) = %v, want %v", tt.p, got, tt.want)
		}
	}
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median = %v, want 2", got)
	}
	if got := rotate([]string{"a", "b", "c"}, 4); strings.Join(got, "") != "bca" {
		t.Errorf("rotate = %v", got)
	}

	// The baseline command works but is not advertised.
	var usageOut strings.Builder
	usage(&usageOut)
	if !strings.Contains(usageOut.String(), "bench ") || strings.Contains(usageOut.String(), "bench-baseline") {
		t.Errorf("usage should list bench and hide bench-baseline:\n%s", usageOut.String())
	}
	if code, _, errOut := runCmd(t, context.Background(), "bench", "--path", "bogus"); code != 1 || !strings.Contains(errOut, "use sync, durable or baseline") {
		t.Errorf("bench --path bogus: exit %d, stderr %q", code, errOut)
	}
}
