package worker

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sfblocks/sfblocks/worker/workertest"
)

func newTestMetrics(t *testing.T) *Metrics {
	t.Helper()
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func get(t *testing.T, srv *httptest.Server, path string) (int, string) {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestMetricsAndHealthEndpoints(t *testing.T) {
	t.Parallel()
	s := workertest.StartNATS(t)
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Error("registering the metrics twice on one registry should fail")
	}
	w, err := New(workertest.Connect(t, s), newFake(false), WithMetrics(m), WithReplySubjects("reply.>"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewHTTPHandler(reg, w.Ready))
	t.Cleanup(srv.Close)

	if code, body := get(t, srv, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "not started") {
		t.Errorf("/readyz before start = %d %q", code, body)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if code, _ := get(t, srv, "/readyz"); code != http.StatusOK {
		t.Errorf("/readyz running = %d", code)
	}
	r := newReplies(t, workertest.Connect(t, s))
	r.send(t, "sfblocks.search", "m1")
	r.send(t, "sfblocks.insert", "m2")
	r.next(t)
	r.next(t)

	code, body := get(t, srv, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d", code)
	}
	for _, want := range []string{
		`sfblocks_jobs_total{block="search",code="",status="ok"} 1`,
		`sfblocks_jobs_total{block="insert",code="",status="ok"} 1`,
		`sfblocks_job_duration_seconds_count{block="search"} 1`,
		`sfblocks_jobs_in_flight 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if code, body := get(t, srv, "/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	if err := w.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, srv, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "draining") {
		t.Errorf("/readyz after stop = %d %q", code, body)
	}
	if code, _ := get(t, srv, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz after stop = %d", code)
	}
	if code, _ := get(t, srv, "/nope"); code != http.StatusNotFound {
		t.Errorf("/nope = %d", code)
	}
}

func TestReadyzNotConnected(t *testing.T) {
	t.Parallel()
	s := workertest.StartNATS(t)
	nc := workertest.Connect(t, s)
	w := startWorker(t, nc, newFake(false))
	nc.Close()
	workertest.WaitFor(t, 10*time.Second, "Ready to report the closed connection", func() bool { return w.Ready() != nil })
}
