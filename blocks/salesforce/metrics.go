package salesforce

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Kinds of HTTP request to Salesforce, the "kind" label of [Metrics].
const (
	// KindData is a REST API call (query, search, create...).
	KindData = "data"
	// KindToken is a request to the OAuth token endpoint: a token refresh.
	KindToken = "token"
)

// Metrics are the Prometheus collectors of what a worker asks of
// Salesforce: HTTP requests counted and timed at the transport (so every
// request is seen, retries included) and each org's API usage from
// Sforce-Limit-Info:
//
//	sfblocks_salesforce_requests_total{kind,code,method}
//	sfblocks_salesforce_request_duration_seconds{kind,code,method}
//	sfblocks_salesforce_api_used_requests{account}
//	sfblocks_salesforce_api_allocated_requests{account}
//
// No URL becomes a label, so no token or record value reaches a metric.
type Metrics struct {
	calls    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	used     *prometheus.GaugeVec
	max      *prometheus.GaugeVec
}

// NewMetrics returns the collectors, registered with reg when it is not
// nil; it fails when reg already holds collectors of the same names.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
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
			Namespace: "sfblocks", Subsystem: "salesforce", Name: "api_used_requests",
			Help: "API requests used today by the org of an account, from the Sforce-Limit-Info header.",
		}, []string{"account"}),
		max: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "sfblocks", Subsystem: "salesforce", Name: "api_allocated_requests",
			Help: "Daily API request allocation of the org of an account, from the Sforce-Limit-Info header.",
		}, []string{"account"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.calls, m.duration, m.used, m.max} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("salesforce: registering metrics: %w", err)
			}
		}
	}
	return m, nil
}

// Instrument returns a copy of hc whose transport counts and times its
// requests under kind ([KindData] or [KindToken]), as promhttp's
// InstrumentRoundTripperCounter and InstrumentRoundTripperDuration would
// (the same code and method labels; a request that got no answer is not
// counted), without building a label map for every request.
func (m *Metrics) Instrument(hc *http.Client, kind string) *http.Client {
	rt := hc.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	labels := prometheus.Labels{"kind": kind}
	out := *hc
	out.Transport = &instrumented{next: rt, calls: m.calls.MustCurryWith(labels), duration: m.duration.MustCurryWith(labels),
		children: map[requestKey]requestMetrics{}}
	return &out
}

// instrumented counts and times the requests of one kind.
type instrumented struct {
	next     http.RoundTripper
	calls    *prometheus.CounterVec
	duration prometheus.ObserverVec

	mu       sync.RWMutex
	children map[requestKey]requestMetrics
}

// requestKey is what a request's labels are made of: its status and its
// method as sent.
type requestKey struct {
	status int
	method string
}

type requestMetrics struct {
	calls    prometheus.Counter
	duration prometheus.Observer
}

// RoundTrip implements http.RoundTripper.
func (t *instrumented) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	res, err := t.next.RoundTrip(req)
	if err != nil {
		return res, err
	}
	m := t.metrics(requestKey{status: res.StatusCode, method: req.Method})
	m.duration.Observe(time.Since(start).Seconds())
	m.calls.Inc()
	return res, nil
}

// metrics returns the children of k's labels, looked up on first use.
func (t *instrumented) metrics(k requestKey) requestMetrics {
	t.mu.RLock()
	m, ok := t.children[k]
	t.mu.RUnlock()
	if ok {
		return m
	}
	code, method := codeLabel(k.status), methodLabel(k.method)
	m = requestMetrics{calls: t.calls.WithLabelValues(code, method), duration: t.duration.WithLabelValues(code, method)}
	t.mu.Lock()
	t.children[k] = m
	t.mu.Unlock()
	return m
}

// codeLabel is the code label of a status, as promhttp writes it.
func codeLabel(status int) string {
	switch {
	case status == 0:
		return "200"
	case status >= 100 && status <= 599:
		return strconv.Itoa(status)
	}
	return "unknown"
}

// methodLabel is the method label of a request, as promhttp writes it:
// the standard methods in lower case, anything else "unknown".
func methodLabel(method string) string {
	switch m := strings.ToLower(method); m {
	case "get", "put", "head", "post", "delete", "connect", "options", "notify", "trace", "patch":
		if method == m || method == strings.ToUpper(method) {
			return m
		}
	}
	return "unknown"
}

// ObserveUsage records an org's API usage; pass it to [WithUsageObserver].
func (m *Metrics) ObserveUsage(account string, u Usage) {
	m.used.WithLabelValues(account).Set(float64(u.Used))
	m.max.WithLabelValues(account).Set(float64(u.Max))
}
