package main

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sfblocks/sfblocks/worker/workertest"
)

// TestServeWaitsForUnreachableNATS runs the real command against a NATS
// server that is down: the worker says so within a second, naming the
// URL, keeps trying (no exit), and serves once the server is up; with
// --nats-connect-timeout it gives up and exits saying why.
func TestServeWaitsForUnreachableNATS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	t.Parallel()
	bin := fleetBinary(t)
	_, cfg := fleetSim(t)

	t.Run("waits", func(t *testing.T) {
		ns := workertest.StartRestartableNATS(t)
		url := ns.URL()
		ns.Stop()
		logs := &workertest.LogBuffer{}
		cmd := exec.Command(bin, "serve", "--nats-url", url, "--config", cfg, "--metrics-addr=", "--data-dir", t.TempDir(),
			"--log-format", "json", "--log-level", "info", "--drain-timeout", "2s")
		cmd.Stdout, cmd.Stderr = logs, logs
		start := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				_ = cmd.Process.Kill()
				<-done
			}
		})
		want := "NATS unreachable at " + url + ": retrying"
		if !workertest.Eventually(1500*time.Millisecond, func() bool { return strings.Contains(logs.String(), want) }) {
			t.Fatalf("no %q within 1.5s of the start; logs:\n%s", want, logs)
		}
		said := time.Since(start)
		select {
		case err := <-done:
			t.Fatalf("the worker exited while NATS was down: %v; logs:\n%s", err, logs)
		case <-time.After(3 * time.Second):
		}
		ns.Restart()
		nc := workertest.Connect(t, ns.Server())
		if !workertest.Eventually(40*time.Second, func() bool { return pingWorkers(t, nc) == 1 }) {
			t.Fatalf("the worker did not start serving once NATS was up; logs:\n%s", logs)
		}
		if !strings.Contains(logs.String(), "NATS reachable: connected") {
			t.Errorf("no line saying NATS is reachable; logs:\n%s", logs)
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		if err := <-done; err != nil {
			t.Errorf("exit after SIGTERM: %v; logs:\n%s", err, logs)
		}
		t.Logf("said %q %v after the start; served once NATS came up", want, said.Round(10*time.Millisecond))
	})

	t.Run("gives up with --nats-connect-timeout", func(t *testing.T) {
		ns := workertest.StartRestartableNATS(t)
		url := ns.URL()
		ns.Stop()
		out, err := exec.Command(bin, "serve", "--nats-url", url, "--config", cfg, "--metrics-addr=",
			"--data-dir", filepath.Join(t.TempDir(), "d"), "--log-format", "json", "--nats-connect-timeout", "2s").CombinedOutput()
		var ee *exec.ExitError
		if err == nil || !errors.As(err, &ee) || ee.ExitCode() == 0 {
			t.Fatalf("exit %v, want a failure; output:\n%s", err, out)
		}
		for _, want := range []string{"NATS unreachable at " + url + ": retrying for up to 2s", "NATS unreachable at " + url + " for 2s (--nats-connect-timeout)"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(string(out), "JetStream") {
			t.Errorf("the error talks of JetStream, which is not the problem:\n%s", out)
		}
	})
}
