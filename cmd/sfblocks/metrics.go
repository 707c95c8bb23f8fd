package main

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sfblocks/sfblocks/blocks/salesforce"
)

// salesforceMetrics are the collectors for what the worker asks of
// Salesforce: REST calls and token requests (counted and timed at the HTTP
// transport, so every call is seen, retries included) and the org's API
// usage from Sforce-Limit-Info.
type salesforceMetrics struct {
	calls    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	used     *prometheus.GaugeVec
	max      *prometheus.GaugeVec
}

func newSalesforceMetrics(reg prometheus.Registerer) *salesforceMetrics {
	m := &salesforceMetrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sfblocks", Subsystem: "salesforce", Name: "requests_total",
			Help: "HTTP requests to Salesforce by kind (data: REST API, token: OAuth token endpoint, i.e. token refreshes), method and status code.",
		}, []string{"kind", "code", "method"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "sfblocks", Subsystem: "salesforce", Name: "request_duration_seconds",
			Help:    "Duration of HTTP requests to Salesforce by kind.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}, []string{"kind", "code", "method"}),
		used: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "sfblocks", Subsystem: "salesforce", Name: "api_usage_used",
			Help: "API requests used today by the org of an account, from the Sforce-Limit-Info header.",
		}, []string{"account"}),
		max: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "sfblocks", Subsystem: "salesforce", Name: "api_usage_max",
			Help: "Daily API request allocation of the org of an account, from the Sforce-Limit-Info header.",
		}, []string{"account"}),
	}
	reg.MustRegister(m.calls, m.duration, m.used, m.max)
	return m
}

// instrument returns a copy of hc whose transport counts and times requests
// under kind. The URL, and so no token, ever becomes a label.
func (m *salesforceMetrics) instrument(hc *http.Client, kind string) *http.Client {
	rt := hc.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	labels := prometheus.Labels{"kind": kind}
	rt = promhttp.InstrumentRoundTripperCounter(m.calls.MustCurryWith(labels),
		promhttp.InstrumentRoundTripperDuration(m.duration.MustCurryWith(labels), rt))
	out := *hc
	out.Transport = rt
	return &out
}

func (m *salesforceMetrics) observeUsage(account string, u salesforce.Usage) {
	m.used.WithLabelValues(account).Set(float64(u.Used))
	m.max.WithLabelValues(account).Set(float64(u.Max))
}
