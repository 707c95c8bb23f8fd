package sfsim

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestErrorRate(t *testing.T) {
	tests := []struct {
		name       string
		rule       ErrorRule
		wantStatus int
		wantCode   string
	}{
		{"503 default code", ErrorRule{Rate: 1, Status: 503}, 503, "SERVER_UNAVAILABLE"},
		{"500 default code", ErrorRule{Rate: 1, Status: 500}, 500, "UNKNOWN_EXCEPTION"},
		{"custom code", ErrorRule{Rate: 1, Status: 400, ErrorCode: "UNABLE_TO_LOCK_ROW"}, 400, "UNABLE_TO_LOCK_ROW"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startSim(t, Options{})
			tok := s.IssueToken("").AccessToken
			if err := s.Faults().AddErrorRate(tt.rule); err != nil {
				t.Fatal(err)
			}
			resp := call(t, "GET", dataURL(s, "limits"), tok, nil)
			if resp.status != tt.wantStatus || resp.errorCode(t) != tt.wantCode {
				t.Fatalf("%d %s", resp.status, resp.body)
			}
			// Faulted calls are not charged against the daily limit.
			if used, _ := s.APIUsage(); used != 0 {
				t.Errorf("used %d", used)
			}
			// The token endpoint is untouched unless IncludeOAuth is set.
			form := url.Values{"grant_type": {"client_credentials"}, "client_id": {DefaultClientID}, "client_secret": {DefaultClientSecret}}
			if r := call(t, "POST", s.MyDomainURL()+"/services/oauth2/token", "", form); r.status != 200 {
				t.Fatalf("token endpoint faulted: %d", r.status)
			}
			s.Faults().SetIncludeOAuth(true)
			if r := call(t, "POST", s.MyDomainURL()+"/services/oauth2/token", "", form); r.status != tt.wantStatus {
				t.Fatalf("token endpoint with IncludeOAuth: %d", r.status)
			}
			s.Faults().ClearErrorRates()
			if r := call(t, "GET", dataURL(s, "limits"), tok, nil); r.status != 200 {
				t.Fatalf("after clearing: %d", r.status)
			}
		})
	}
}

func TestErrorRateDistribution(t *testing.T) {
	f := newFaults()
	if err := f.Set(FaultConfig{Seed: 42, Errors: []ErrorRule{{Rate: 0.1, Status: 503}, {Rate: 0.05, Status: 500}}}); err != nil {
		t.Fatal(err)
	}
	counts := map[int]int{}
	const n = 20000
	for i := 0; i < n; i++ {
		counts[f.decide(time.Now(), false).status]++
	}
	// Seeded, so deterministic; the bounds only guard against a broken draw.
	if c := counts[503]; c < n*8/100 || c > n*12/100 {
		t.Errorf("503 in %d of %d draws, want about 10%%", c, n)
	}
	if c := counts[500]; c < n*3/100 || c > n*7/100 {
		t.Errorf("500 in %d of %d draws, want about 5%%", c, n)
	}
}

func TestLatencyDistributions(t *testing.T) {
	tests := []struct {
		name   string
		lat    Latency
		lo, hi time.Duration
	}{
		{"fixed", Latency{Fixed: Duration(30 * time.Millisecond)}, 30 * time.Millisecond, 30 * time.Millisecond},
		{"uniform", Latency{Distribution: LatencyUniform, Min: Duration(10 * time.Millisecond), Max: Duration(20 * time.Millisecond)}, 10 * time.Millisecond, 20 * time.Millisecond},
		{"normal clamps at zero", Latency{Distribution: LatencyNormal, Mean: Duration(time.Millisecond), StdDev: Duration(10 * time.Millisecond)}, 0, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFaults()
			if err := f.Set(FaultConfig{Latency: tt.lat, Seed: 7}); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 1000; i++ {
				d := f.decide(time.Now(), false).delay
				if d < tt.lo || d > tt.hi {
					t.Fatalf("delay %v outside [%v, %v]", d, tt.lo, tt.hi)
				}
			}
		})
	}
	// End to end: a small fixed latency still answers.
	s := startSim(t, Options{})
	if err := s.Faults().SetLatency(Latency{Fixed: Duration(time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	if r := call(t, "GET", dataURL(s, "limits"), s.IssueToken("").AccessToken, nil); r.status != 200 {
		t.Fatalf("with latency: %d", r.status)
	}
}

func TestFaultConfigValidation(t *testing.T) {
	tests := []struct {
		name string
		cfg  FaultConfig
	}{
		{"rate above 1", FaultConfig{Errors: []ErrorRule{{Rate: 1.5, Status: 503}}}},
		{"rates sum above 1", FaultConfig{Errors: []ErrorRule{{Rate: 0.6, Status: 503}, {Rate: 0.6, Status: 500}}}},
		{"status 200", FaultConfig{Errors: []ErrorRule{{Rate: 0.1, Status: 200}}}},
		{"distribution", FaultConfig{Latency: Latency{Distribution: "poisson"}}},
		{"outage mode", FaultConfig{Outage: &Outage{Mode: "melt"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := newFaults().Set(tt.cfg); err == nil {
				t.Fatal("Set accepted an invalid config")
			}
		})
	}
}

func TestOutage(t *testing.T) {
	clock := newFakeClock()
	s := startSim(t, Options{Now: clock.Now})
	tok := s.IssueToken("").AccessToken

	if err := s.Faults().StartOutage(OutageUnavailable, time.Minute, clock.Now()); err != nil {
		t.Fatal(err)
	}
	if r := call(t, "GET", dataURL(s, "limits"), tok, nil); r.status != 503 || r.errorCode(t) != "SERVER_UNAVAILABLE" {
		t.Fatalf("during outage: %d %s", r.status, r.body)
	}
	clock.Advance(time.Minute)
	if r := call(t, "GET", dataURL(s, "limits"), tok, nil); r.status != 200 {
		t.Fatalf("after outage: %d", r.status)
	}

	if err := s.Faults().StartOutage(OutageRefuse, 0, clock.Now()); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", dataURL(s, "limits"), nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("refused outage answered %d", resp.StatusCode)
	}
	s.Faults().EndOutage()
	if r := call(t, "GET", dataURL(s, "limits"), tok, nil); r.status != 200 {
		t.Fatalf("after EndOutage: %d", r.status)
	}
	if st := s.Stats(); st.FaultsInjected["outage503"] != 1 || st.FaultsInjected["outageRefuse"] < 1 {
		t.Errorf("faults %v", st.FaultsInjected)
	}
}

func TestLockNextWrites(t *testing.T) {
	s, tok := seeded(t, Options{})
	s.Faults().LockNextWrites(2)
	for i := 0; i < 2; i++ {
		resp := call(t, "POST", dataURL(s, "sobjects/Account"), tok, `{"Name":"Locked Co"}`)
		var errs []apiError
		resp.json(t, &errs)
		if resp.status != 400 || errs[0].Code != "UNABLE_TO_LOCK_ROW" ||
			!strings.HasPrefix(errs[0].Message, "unable to obtain exclusive access to this record or 1 records: 001") {
			t.Fatalf("write %d: %d %s", i, resp.status, resp.body)
		}
		if !strings.Contains(string(resp.body), `"fields":[]`) {
			t.Errorf("lock error lacks fields: %s", resp.body)
		}
	}
	if r := call(t, "POST", dataURL(s, "sobjects/Account"), tok, `{"Name":"Free Co"}`); r.status != 201 {
		t.Fatalf("third write: %d %s", r.status, r.body)
	}
	// In a collection each record takes one lock.
	s.Faults().LockNextWrites(1)
	resp := call(t, "POST", dataURL(s, "composite/sobjects"), tok,
		`{"records":[{"attributes":{"type":"Account"},"Name":"L1"},{"attributes":{"type":"Account"},"Name":"L2"}]}`)
	var results []saveResult
	resp.json(t, &results)
	if results[0].Success || results[0].Errors[0].StatusCode != "UNABLE_TO_LOCK_ROW" || !results[1].Success {
		t.Fatalf("collection: %s", resp.body)
	}
}

func TestAdminEndpoints(t *testing.T) {
	s := startSim(t, Options{})
	tok := s.IssueToken("").AccessToken
	admin := func(method, path, body string) response {
		t.Helper()
		var b any
		if body != "" {
			b = body
		}
		return call(t, method, s.LoginURL()+"/_sim/"+path, "", b)
	}
	r := admin("PUT", "faults", `{"errors":[{"rate":1,"status":503}],"latency":{"fixed":"1ms"}}`)
	var cfg FaultConfig
	r.json(t, &cfg)
	if r.status != 200 || len(cfg.Errors) != 1 || time.Duration(cfg.Latency.Fixed) != time.Millisecond {
		t.Fatalf("PUT faults: %d %s", r.status, r.body)
	}
	if r := call(t, "GET", dataURL(s, "limits"), tok, nil); r.status != 503 {
		t.Fatalf("after PUT faults: %d", r.status)
	}
	if r := admin("PUT", "faults", `{"errors":[{"rate":2,"status":503}]}`); r.status != 400 {
		t.Fatalf("invalid faults accepted: %d", r.status)
	}
	r = admin("GET", "stats", "")
	var st Stats
	r.json(t, &st)
	if st.FaultsInjected["error"] != 1 {
		t.Fatalf("stats %s", r.body)
	}
	if r := admin("POST", "reset", ""); r.status != 200 {
		t.Fatalf("reset: %d", r.status)
	}
	if r := call(t, "GET", dataURL(s, "limits"), tok, nil); r.status != 200 {
		t.Fatalf("after reset: %d", r.status)
	}
	if r := admin("POST", "expire-sessions", ""); r.status != 200 {
		t.Fatalf("expire: %d", r.status)
	}
	if r := call(t, "GET", dataURL(s, "limits"), tok, nil); r.status != 401 {
		t.Fatalf("after expire-sessions: %d", r.status)
	}
	r = admin("POST", "token", `{"scope":"api refresh_token"}`)
	var minted map[string]string
	r.json(t, &minted)
	if minted["refresh_token"] == "" || minted["instance_url"] != "http://localhost:"+strings.TrimPrefix(s.LoginURL(), "http://127.0.0.1:") {
		t.Fatalf("token: %s", r.body)
	}
	if r := call(t, "GET", dataURL(s, "limits"), minted["access_token"], nil); r.status != 200 {
		t.Fatalf("minted token: %d", r.status)
	}
	r = admin("PUT", "usage", `{"used":100}`)
	var usage map[string]int
	r.json(t, &usage)
	if usage["used"] != 100 || usage["limit"] != DefaultDailyAPILimit {
		t.Fatalf("usage %s", r.body)
	}
	if r := admin("GET", "nope", ""); r.status != 404 {
		t.Fatalf("unknown control: %d", r.status)
	}
	var raw map[string]any
	if err := json.Unmarshal(admin("GET", "faults", "").body, &raw); err != nil {
		t.Fatal(err)
	}
}
