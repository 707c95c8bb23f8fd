package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

const healthSynopsis = `health [flags]

Asks a running worker whether it is ready (GET /readyz on its
--metrics-addr) and exits 0 when it is, 1 when it is not (it prints why:
NATS disconnected, JetStream unreachable, draining...) or does not answer.
With --live it asks /healthz instead: whether the process answers at all.
It is what a container's health check runs: the image has no shell or curl.

Examples:
  sfblocks health                          # the worker on 127.0.0.1:9464
  sfblocks health --addr 127.0.0.1:9464 --live`

func runHealth(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("health", healthSynopsis, stderr)
	addr := fs.String("addr", envOr("SFBLOCKS_METRICS_ADDR", "127.0.0.1:9464"), "the worker's --metrics-addr (env SFBLOCKS_METRICS_ADDR); a 0.0.0.0 host is asked on 127.0.0.1")
	live := fs.Bool("live", false, "ask /healthz (the process answers) instead of /readyz (the worker takes jobs)")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	host := strings.Replace(*addr, "0.0.0.0:", "127.0.0.1:", 1)
	if strings.HasPrefix(host, ":") {
		host = "127.0.0.1" + host
	}
	path := "/readyz"
	if *live {
		path = "/healthz"
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+path, nil)
	if err != nil {
		return fmt.Errorf("--addr %q: %w", *addr, err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stdout, "not answering: %v (is the worker running with --metrics-addr %s?)\n", err, *addr)
		return exitError{code: 1}
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	fmt.Fprint(stdout, string(body))
	if res.StatusCode != http.StatusOK {
		return exitError{code: 1}
	}
	return nil
}
