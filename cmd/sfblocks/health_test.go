package main

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sfblocks/sfblocks/worker"
)

func TestHealthCommand(t *testing.T) {
	t.Parallel()
	var ready error
	srv := httptest.NewServer(worker.NewHTTPHandler(prometheus.NewRegistry(), func() error { return ready }))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	for _, tc := range []struct {
		name  string
		ready error
		args  []string
		code  int
		out   string
	}{
		{"ready", nil, []string{"--addr", addr}, 0, "ready"},
		{"not ready", worker.ErrJetStreamUnavailable, []string{"--addr", addr}, 1, "JetStream is unreachable"},
		{"live while not ready", worker.ErrNotConnected, []string{"--addr", addr, "--live"}, 0, "ok"},
		{"nothing there", nil, []string{"--addr", "127.0.0.1:1"}, 1, "not answering"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ready = tc.ready
			var out bytes.Buffer
			err := runHealth(context.Background(), tc.args, &out, &out)
			code := 0
			var ee exitError
			if errors.As(err, &ee) {
				code = ee.code
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code || !strings.Contains(out.String(), tc.out) {
				t.Errorf("exit %d, output %q; want %d and %q", code, out.String(), tc.code, tc.out)
			}
		})
	}
}
