package breaker_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sfblocks/sfblocks/blocks/salesforce/breaker"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
)

func TestMetricsAndOneLogLinePerTransition(t *testing.T) {
	t.Parallel()
	h := setup(t, breaker.Settings{OpenTimeout: 100 * time.Millisecond}, "prod", "other")
	a := h.accounts["prod"]
	if err := query(ctxT(t), a); err != nil {
		t.Fatal(err)
	}
	trip(t, a)
	for range 4 {
		if err := query(ctxT(t), a); !errors.Is(err, breaker.ErrOpen) {
			t.Fatalf("err = %v; want fail fast", err)
		}
	}
	if got := gauge(t, h.reg, "sfblocks_breaker_state", "prod"); got != 2 {
		t.Fatalf("state gauge while open = %v, want 2", got)
	}
	a.srv.Faults().EndOutage()
	waitHalfOpen(t, a)
	if got := gauge(t, h.reg, "sfblocks_breaker_state", "prod"); got != 1 {
		t.Fatalf("state gauge while half-open = %v, want 1", got)
	}
	for range breaker.DefaultHalfOpenProbes {
		if err := query(ctxT(t), a); err != nil {
			t.Fatal(err)
		}
	}
	expectEvent(t, a, breaker.StateHalfOpen, breaker.StateClosed)

	want := map[string]float64{
		`sfblocks_breaker_state{account="other"}`:                           0,
		`sfblocks_breaker_state{account="prod"}`:                            0,
		`sfblocks_breaker_transitions_total{account="prod",to="closed"}`:    1,
		`sfblocks_breaker_transitions_total{account="prod",to="half-open"}`: 1,
		`sfblocks_breaker_transitions_total{account="prod",to="open"}`:      1,
		`sfblocks_breaker_rejected_total{account="other"}`:                  0,
		`sfblocks_breaker_rejected_total{account="prod"}`:                   4,
	}
	if got := series(t, h.reg, "sfblocks_breaker_"); !maps.Equal(got, want) {
		t.Fatalf("metrics = %v\nwant %v", got, want)
	}

	type line struct {
		Level, Account, From, To, Message, LastFailure string
		Until                                          string
	}
	var got []line
	for _, l := range h.logs.Lines() {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		s := func(k string) string { v, _ := m[k].(string); return v }
		got = append(got, line{s("level"), s("account"), s("from"), s("to"), s("message"), s("last_failure"), s("until")})
	}
	wantLines := []struct{ level, from, to string }{
		{"warn", "closed", "open"}, {"info", "open", "half-open"}, {"info", "half-open", "closed"},
	}
	if len(got) != len(wantLines) {
		t.Fatalf("log lines = %+v; want one per transition", got)
	}
	for i, w := range wantLines {
		g := got[i]
		if g.Level != w.level || g.Account != "prod" || g.From != w.from || g.To != w.to || g.Message == "" {
			t.Errorf("log line %d = %+v; want %s %s → %s for prod", i, g, w.level, w.from, w.to)
		}
	}
	if !strings.Contains(got[0].LastFailure, "503") || got[0].Until == "" {
		t.Errorf("open line = %+v; want the last failure (503) and until", got[0])
	}
	for _, l := range h.logs.Lines() {
		if strings.Contains(l, sfsim.DefaultClientSecret) || strings.Contains(l, "SELECT") {
			t.Errorf("log line leaks a secret or a query: %s", l)
		}
	}
}

// series returns every gauge and counter whose name has prefix, keyed
// name{label="value",...} with labels in the registry's (sorted) order.
func series(t *testing.T, g prometheus.Gatherer, prefix string) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), prefix) {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, lp := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", lp.GetName(), lp.GetValue()))
			}
			key := mf.GetName() + "{" + strings.Join(labels, ",") + "}"
			if m.GetGauge() != nil {
				out[key] = m.GetGauge().GetValue()
			} else {
				out[key] = m.GetCounter().GetValue()
			}
		}
	}
	return out
}

func gauge(t *testing.T, g prometheus.Gatherer, name, account string) float64 {
	t.Helper()
	v, ok := series(t, g, name)[fmt.Sprintf("%s{account=%q}", name, account)]
	if !ok {
		t.Fatalf("no %s{account=%q}", name, account)
	}
	return v
}

func TestFailureRatioTrips(t *testing.T) {
	t.Parallel()
	// Every second answer is a 503: never two failures in a row, but half
	// of the calls fail, so the 20th call (the 10th failure) trips.
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%2 == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	opened := make(chan struct{}, 1)
	set, err := breaker.NewSet(breaker.Settings{OnStateChange: func(_ string, _, to breaker.State) {
		if to == breaker.StateOpen {
			opened <- struct{}{}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	b := set.For("prod")
	hc := b.Client(srv.Client())
	for i := 1; i <= breaker.DefaultMinRequests; i++ {
		res, err := hc.Get(srv.URL)
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		res.Body.Close()
		if i < breaker.DefaultMinRequests && b.State() != breaker.StateClosed {
			t.Fatalf("opened after %d calls", i)
		}
	}
	select {
	case <-opened:
	default:
		t.Fatalf("state %s after %d calls at 50%% failures; want open", b.State(), breaker.DefaultMinRequests)
	}
	if _, err := hc.Get(srv.URL); !errors.Is(err, breaker.ErrOpen) {
		t.Fatalf("err = %v; want fail fast", err)
	}
}

func TestSettings(t *testing.T) {
	set, err := breaker.NewSet(breaker.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	got := set.Settings()
	if got.ConsecutiveFailures != 5 || got.FailureRatio != 0.5 || got.MinRequests != 20 || got.Window != 10*time.Second ||
		got.OpenTimeout != 30*time.Second || got.HalfOpenProbes != 3 {
		t.Fatalf("defaults = %+v", got)
	}

	tests := []struct {
		name    string
		given   breaker.Settings
		wantErr string
	}{
		{name: "ratio above 1", given: breaker.Settings{FailureRatio: 1.5}, wantErr: "FailureRatio"},
		{name: "negative failures", given: breaker.Settings{ConsecutiveFailures: -1}, wantErr: "negative"},
		{name: "negative open timeout", given: breaker.Settings{OpenTimeout: -time.Second}, wantErr: "OpenTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := breaker.NewSet(tt.given); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v; want one mentioning %s", err, tt.wantErr)
			}
		})
	}

	// Two sets on one registry share the series instead of failing.
	reg := prometheus.NewRegistry()
	for range 2 {
		if _, err := breaker.NewSet(breaker.Settings{Registerer: reg}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpenErrorMessage(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 30, 0, time.UTC)
	e := &breaker.OpenError{Account: "prod", State: breaker.StateOpen, RetryAt: at}
	for _, want := range []string{`"prod"`, "open", "2026-03-01T12:00:30Z"} {
		if !strings.Contains(e.Error(), want) {
			t.Errorf("%q lacks %q", e.Error(), want)
		}
	}
	if !errors.Is(e, breaker.ErrOpen) || errors.Is(errors.New("x"), breaker.ErrOpen) || e.RetryAfter() != 0 {
		t.Error("errors.Is or RetryAfter wrong")
	}
}
