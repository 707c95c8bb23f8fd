package main

import (
	"context"
	"io"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
	"github.com/sfblocks/sfblocks/cmd/sfblocks/internal/bench"
	"github.com/sfblocks/sfblocks/worker/workertest"
)

// TestBenchFlags: every flag lands in its field of bench.Config, and no
// flag's default differs from bench.DefaultConfig.
func TestBenchFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		want    func(*bench.Config) // applied to DefaultConfig
		wantErr string
	}{
		{"defaults", nil, func(*bench.Config) {}, ""},
		{"every flag", []string{"--preset", "floors", "--path", "durable, baseline", "--clients", "3", "--latency", "100ms",
			"--workers", "4", "--max-in-flight", "64", "--duration", "2s", "--warmup", "0s", "--rounds", "1",
			"--mix", "search=0.8,insert=0.2", "--json", "out.json", "--format", "json", "--binary", "/tmp/sfb",
			"--worker-log-level", "warn", "--job-timeout", "3s"}, func(c *bench.Config) {
			c.Preset, c.Paths, c.Clients, c.Latency = "floors", []bench.Path{bench.PathDurable, bench.PathBaseline}, 3, 100*time.Millisecond
			c.Workers, c.MaxInFlight, c.Duration, c.Warmup, c.Rounds = 4, 64, 2*time.Second, 0, 1
			c.Mix, c.JSONFile, c.Format, c.Binary = bench.Mix{Search: 0.8}, "out.json", "json", "/tmp/sfb"
			c.WorkerLogLevel, c.JobTimeout = "warn", 3*time.Second
		}, ""},
		{"bad path", []string{"--path", "sync,bogus"}, nil, `--path "bogus": use sync, durable or baseline`},
		{"bad mix", []string{"--mix", "search=x"}, nil, `--mix "search=x"`},
		{"unknown flag", []string{"--bogus"}, nil, "usage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := benchFlags(tt.args, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("benchFlags(%q): %v, want an error saying %q", tt.args, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := bench.DefaultConfig()
			tt.want(&want)
			want.Progress = io.Discard
			if !reflect.DeepEqual(got, want) {
				t.Errorf("benchFlags(%q) =\n%+v\nwant\n%+v", tt.args, got, want)
			}
		})
	}
}

// TestBenchCommand runs bench and bench-baseline through run, for what the
// command adds to the package: the exit status and where messages go.
func TestBenchCommand(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "missing")
	tests := []struct {
		args       []string
		wantCode   int
		wantStderr string
		wantStdout string
	}{
		{[]string{"bench", "--path", "bogus"}, 1, "sfblocks bench: --path \"bogus\": use sync, durable or baseline", ""},
		{[]string{"bench", "--clients", "0"}, 1, "--clients, --workers, --max-in-flight and --rounds must be positive", ""},
		{[]string{"bench", "--format", "csv"}, 1, `--format "csv": use table or json`, ""},
		{[]string{"bench", "--bogus"}, 2, "flag provided but not defined: -bogus", ""},
		{[]string{"bench", "extra"}, 2, "unexpected arguments: [extra]", ""},
		{[]string{"bench", "-h"}, 0, "-worker-log-level string", ""},
		{[]string{"help", "bench"}, 0, "--preset floors runs the issue's five measurements", ""},
		// The bench starts (NATS, simulator), its first run cannot: the
		// error names the binary, and the empty table is still printed.
		{[]string{"bench", "--binary", missing, "--duration", "1s", "--rounds", "1"}, 1, "sfblocks bench: round 1, sync: start worker-0 (" + missing, "  round  scenario"},
		{[]string{"bench-baseline"}, 2, "--instance-url and a positive --max-in-flight are required", ""},
		{[]string{"bench-baseline", "--instance-url", "http://127.0.0.1:1", "--max-in-flight", "0"}, 2, "--instance-url and a positive --max-in-flight are required", ""},
		{[]string{"bench-baseline", "-h"}, 0, "-api-version string", ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			code, out, errOut := runCmd(t, ctx, tt.args...)
			if code != tt.wantCode || !strings.Contains(errOut, tt.wantStderr) || !strings.HasPrefix(out, tt.wantStdout) {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, stdout starting %q, stderr holding %q", code, out, errOut, tt.wantCode, tt.wantStdout, tt.wantStderr)
			}
		})
	}

	// The baseline command works but is not advertised.
	var usageOut strings.Builder
	usage(&usageOut)
	if !strings.Contains(usageOut.String(), "bench ") || strings.Contains(usageOut.String(), "bench-baseline") {
		t.Errorf("usage should list bench and hide bench-baseline:\n%s", usageOut.String())
	}
}

// TestBenchBaselineCommand runs the hidden command as the bench starts it:
// its flags, the secret from the environment, "ready" on stdout, and exit
// status 0 when stopped. (t.Setenv rules out t.Parallel.)
func TestBenchBaselineCommand(t *testing.T) {
	ns := workertest.StartNATS(t)
	sim := workertest.StartSim(t, sfsim.Options{})
	t.Setenv(bench.EnvSecret, sfsim.DefaultClientSecret)

	ctx, cancel := context.WithCancel(t.Context())
	var stdout, stderr workertest.LogBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"bench-baseline", "--nats-url", ns.ClientURL(), "--instance-url", sim.MyDomainURL(), "--max-in-flight", "4"}, &stdout, &stderr)
	}()
	workertest.WaitFor(t, 20*time.Second, "the baseline's ready", func() bool {
		return stdout.String() == "ready\n" || len(done) > 0
	})
	if len(done) > 0 {
		t.Fatalf("bench-baseline exited %d before it was ready: %s", <-done, stderr.String())
	}

	nc := workertest.Connect(t, ns)
	reply, err := nc.Request("sfblocks.search", []byte(`{"query":"SELECT Id, Name FROM Contact WHERE Phone = '+1 415 555 0100'"}`), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(reply.Data), "Ada Byron") || reply.Header.Get("Nats-Service-Error-Code") != "" {
		t.Errorf("reply %s (headers %v), want Salesforce's answer with the seed Contact", reply.Data, reply.Header)
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("bench-baseline exited %d when stopped, want 0; stderr: %s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("bench-baseline did not stop within 10s of its context")
	}
}
