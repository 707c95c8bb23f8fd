package salesforce_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sfblocks/sfblocks/blocks/salesforce"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
)

func TestMetricsCountRequestsAndUsage(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := salesforce.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := salesforce.NewMetrics(reg); err == nil {
		t.Error("registering twice did not fail")
	}
	c, _, _ := simClient(t, sfsim.Options{}, salesforce.WithHTTPClient(m.Instrument(salesforce.SharedHTTPClient(), salesforce.KindData)),
		salesforce.WithUsageObserver(func(u salesforce.Usage) { m.ObserveUsage("prod", u) }))
	if _, err := c.Query(context.Background(), "SELECT Id FROM Contact LIMIT 1"); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP sfblocks_salesforce_requests_total HTTP requests to Salesforce by kind (data: REST API, token: OAuth token endpoint, i.e. token refreshes), method and status code.
# TYPE sfblocks_salesforce_requests_total counter
sfblocks_salesforce_requests_total{code="200",kind="data",method="get"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "sfblocks_salesforce_requests_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(reg, "sfblocks_salesforce_api_used_requests", "sfblocks_salesforce_api_allocated_requests"); n != 2 {
		t.Errorf("usage gauges = %d series, want 2", n)
	}
}

// TestInstrumentLabelsAsPromhttp: the requests are labelled as promhttp's
// round-trip instrumentation labels them, odd statuses and methods
// included.
func TestInstrumentLabelsAsPromhttp(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status, _ := strconv.Atoi(r.URL.Query().Get("status"))
		w.WriteHeader(status)
	}))
	defer srv.Close()
	ours, theirs := prometheus.NewRegistry(), prometheus.NewRegistry()
	m, err := salesforce.NewMetrics(ours)
	if err != nil {
		t.Fatal(err)
	}
	calls := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sfblocks_salesforce_requests_total",
		Help: "HTTP requests to Salesforce by kind (data: REST API, token: OAuth token endpoint, i.e. token refreshes), method and status code."},
		[]string{"kind", "code", "method"})
	theirs.MustRegister(calls)
	clients := []*http.Client{
		m.Instrument(&http.Client{}, salesforce.KindData),
		{Transport: promhttp.InstrumentRoundTripperCounter(calls.MustCurryWith(prometheus.Labels{"kind": salesforce.KindData}), http.DefaultTransport)},
	}
	for _, c := range clients {
		for _, tt := range []struct {
			method string
			status int
		}{{"GET", 200}, {"get", 200}, {"PATCH", 204}, {"POST", 201}, {"Get", 200}, {"PURGE", 200}, {"DELETE", 503}, {"GET", 299}, {"GET", 404}} {
			req, err := http.NewRequest(tt.method, srv.URL+"?status="+strconv.Itoa(tt.status), nil)
			if err != nil {
				t.Fatal(err)
			}
			res, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
		}
	}
	// promhttp's own exposition of its counter is what ours must hold.
	want := httptest.NewRecorder()
	promhttp.HandlerFor(theirs, promhttp.HandlerOpts{}).ServeHTTP(want, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if err := testutil.GatherAndCompare(ours, want.Body, "sfblocks_salesforce_requests_total"); err != nil {
		t.Error(err)
	}
}
