package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sfblocks/sfblocks/worker/workertest"
)

// buildSfblocks builds the sfblocks command into a temporary directory:
// a bench starts its workers and baseline as processes of that binary (in
// a test, the running executable is the test binary, which has neither
// serve nor bench-baseline).
func buildSfblocks(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sfblocks")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/sfblocks/sfblocks/cmd/sfblocks")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestRunEndToEnd runs a short bench of every path with real workers and
// the real baseline, and checks the report on stdout and in the JSON file.
func TestRunEndToEnd(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds sfblocks and starts worker processes")
	}
	cfg := DefaultConfig()
	cfg.Binary = buildSfblocks(t)
	cfg.Paths = []Path{PathSync, PathDurable, PathBaseline}
	cfg.Duration, cfg.Warmup, cfg.Rounds, cfg.Clients = time.Second, 200*time.Millisecond, 1, 4
	cfg.Mix = Mix{Search: 0.75}
	cfg.Format = FormatJSON
	cfg.JSONFile = filepath.Join(t.TempDir(), "bench.json")
	var progress workertest.LogBuffer
	cfg.Progress = &progress

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := Run(ctx, cfg, &out); err != nil {
		t.Fatalf("Run: %v\nprogress:\n%s", err, progress.String())
	}

	file, err := os.ReadFile(cfg.JSONFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(file, out.Bytes()) {
		t.Errorf("the JSON file and stdout differ:\n%s\n---\n%s", file, out.Bytes())
	}
	var rep struct {
		Runs   []map[string]any `json:"runs"`
		Ratios []struct {
			Name   string  `json:"name"`
			Median float64 `json:"median"`
		} `json:"ratios"`
	}
	if err := json.Unmarshal(file, &rep); err != nil {
		t.Fatalf("JSON report: %v\n%s", err, file)
	}
	seen := map[string]bool{}
	for _, r := range rep.Runs {
		path, _ := r["path"].(string)
		seen[path] = true
		for _, field := range []string{"jobs_per_s", "p50_ms", "p90_ms", "p99_ms", "errors", "sf_calls_per_job", "token_requests", "peak_rss_mb", "cpu_us_per_job", "jobs"} {
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
	for _, p := range cfg.Paths {
		if !seen[string(p)] {
			t.Errorf("no %s run in the report", p)
		}
	}
	if len(rep.Ratios) != 3 {
		t.Errorf("ratios %+v, want sync/baseline, durable/sync and durable/baseline", rep.Ratios)
	}
	if lines := progress.Lines(); len(lines) != 3 || !strings.HasPrefix(lines[0], "round 1 custom") {
		t.Errorf("progress lines %q, want one per run", lines)
	}
}

// falseBinary is false(1): a program that exits 1 whatever its arguments.
func falseBinary(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("false")
	if err != nil {
		t.Skipf("no false(1) here: %v", err)
	}
	return bin
}

// TestRunFailures: a bench that cannot run says why and what to change.
// Once the bench has started, what ran is reported even so, as the
// command always did: here, the table's header and no runs.
func TestRunFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		change     func(*Config)
		wantErr    []string
		wantHeader bool
	}{
		{"invalid config", func(c *Config) { c.Rounds = 0 }, []string{"--rounds must be positive"}, false},
		{"no such binary", func(c *Config) { c.Binary = filepath.Join(t.TempDir(), "missing") }, []string{"round 1, sync", "start worker-0", "--binary"}, true},
		{"no such binary, baseline", func(c *Config) {
			c.Binary, c.Paths = filepath.Join(t.TempDir(), "missing"), []Path{PathBaseline}
		}, []string{"round 1, baseline", "start baseline"}, true},
		// A binary without a serve command: the worker exits at once, and
		// the error shows the end of its log. (Never the test binary: it
		// would run these tests again, and start itself again.)
		{"not sfblocks", func(c *Config) { c.Binary = falseBinary(t) }, []string{"worker-0 exited early", "its log ends"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := DefaultConfig()
			cfg.Duration, cfg.Rounds = time.Second, 1
			tt.change(&cfg)
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			var out bytes.Buffer
			err := Run(ctx, cfg, &out)
			for _, want := range tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("Run: %v, want an error saying %q", err, want)
				}
			}
			if header := strings.HasPrefix(out.String(), "  round  scenario"); header != tt.wantHeader || strings.Count(out.String(), "\n") > 1 {
				t.Errorf("output %q, want the header alone %v", out.String(), tt.wantHeader)
			}
		})
	}
}

// TestRunAgainstExternalNATS runs the durable path against a NATS the bench
// did not start and, alternating, against its embedded server, and
// reports the ratio of the two.
func TestRunAgainstExternalNATS(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds sfblocks and starts worker processes")
	}
	ns := workertest.StartNATS(t)
	cfg := DefaultConfig()
	cfg.Binary = buildSfblocks(t)
	cfg.Paths = []Path{PathDurable}
	cfg.Duration, cfg.Warmup, cfg.Rounds, cfg.Clients = time.Second, 200*time.Millisecond, 1, 4
	cfg.NATSURL, cfg.CompareEmbedded = ns.ClientURL(), true
	cfg.Format = FormatJSON
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := Run(ctx, cfg, &out); err != nil {
		t.Fatalf("Run: %v", err)
	}
	var rep struct {
		Runs []struct {
			Scenario   string  `json:"scenario"`
			JobsPerSec float64 `json:"jobs_per_s"`
			Errors     int     `json:"errors"`
		} `json:"runs"`
		Ratios []struct {
			Name   string  `json:"name"`
			Median float64 `json:"median"`
		} `json:"ratios"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	scenarios := map[string]bool{}
	for _, r := range rep.Runs {
		scenarios[r.Scenario] = r.JobsPerSec > 0 && r.Errors == 0
	}
	if !scenarios["external-R1"] || !scenarios["one-node"] || len(rep.Runs) != 2 {
		t.Errorf("runs %+v, want one clean durable run on each target", rep.Runs)
	}
	found := false
	for _, r := range rep.Ratios {
		found = found || (r.Name == "durable external-R1/one-node" && r.Median > 0)
	}
	if !found {
		t.Errorf("ratios %+v lack durable external-R1/one-node", rep.Ratios)
	}
	// The jobs went to the external server.
	_, js := workertest.JetStream(t, ns)
	if _, err := js.Stream(ctx, "SFBLOCKS_JOBS"); err != nil {
		t.Errorf("no jobs stream on the external server: %v", err)
	}
	for _, bad := range []Config{{Replicas: 3}, {Replicas: 1, CompareEmbedded: true}} {
		c := DefaultConfig()
		c.Replicas, c.CompareEmbedded = bad.Replicas, bad.CompareEmbedded
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "--nats-url") {
			t.Errorf("Validate(%+v) = %v, want it to ask for --nats-url", bad, err)
		}
	}
}
