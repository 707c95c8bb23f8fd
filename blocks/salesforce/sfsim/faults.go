package sfsim

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Duration is a time.Duration that reads and writes JSON as a Go duration
// string ("150ms", "2s"), so fault settings are readable over /_sim/faults.
type Duration time.Duration

// MarshalJSON writes the duration as a string such as "150ms".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON accepts a duration string ("150ms") or a number of milliseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("sfsim: duration %q: %w", s, err)
		}
		*d = Duration(v)
		return nil
	}
	var ms float64
	if err := json.Unmarshal(b, &ms); err != nil {
		return fmt.Errorf("sfsim: duration must be a string like \"150ms\" or a number of milliseconds: %w", err)
	}
	*d = Duration(time.Duration(ms * float64(time.Millisecond)))
	return nil
}

// Latency distributions for [Latency.Distribution].
const (
	LatencyFixed   = "fixed"   // always Fixed
	LatencyUniform = "uniform" // uniform in [Min, Max]
	LatencyNormal  = "normal"  // normal around Mean with StdDev, clamped to >= 0
)

// Latency is extra delay added before a faulted request is answered.
// The zero value adds none.
type Latency struct {
	// Distribution is "fixed" (default when Fixed is set), "uniform" or "normal".
	Distribution string   `json:"distribution,omitempty"`
	Fixed        Duration `json:"fixed,omitempty"`
	Min          Duration `json:"min,omitempty"`
	Max          Duration `json:"max,omitempty"`
	Mean         Duration `json:"mean,omitempty"`
	StdDev       Duration `json:"stdDev,omitempty"`
}

// ErrorRule makes a fraction of requests fail with a given answer.
type ErrorRule struct {
	// Rate is the probability in [0, 1] that a request gets this answer.
	// Rules are drawn once per request; their rates add up (at most 1).
	Rate float64 `json:"rate"`
	// Status is the HTTP status, e.g. 503 or 500.
	Status int `json:"status"`
	// ErrorCode is the Salesforce errorCode. Defaults to SERVER_UNAVAILABLE
	// for 503 and UNKNOWN_EXCEPTION otherwise.
	ErrorCode string `json:"errorCode,omitempty"`
	// Message defaults to Salesforce's wording for the code.
	Message string `json:"message,omitempty"`
}

// Outage modes for [Outage.Mode].
const (
	OutageUnavailable = "unavailable" // answer 503 SERVER_UNAVAILABLE
	OutageRefuse      = "refuse"      // drop the connection without an answer
)

// Outage makes every faulted request fail for a while.
type Outage struct {
	// Mode is "unavailable" (503 answers, the default) or "refuse"
	// (the connection is closed without an answer, as a dead host would).
	Mode string `json:"mode,omitempty"`
	// Until ends the outage; the zero time means until cleared.
	Until time.Time `json:"until,omitzero"`
}

// FaultConfig is the whole fault injection state, as GET/PUT /_sim/faults
// exchange it. The zero value injects nothing.
type FaultConfig struct {
	Latency Latency     `json:"latency"`
	Errors  []ErrorRule `json:"errors,omitempty"`
	Outage  *Outage     `json:"outage,omitempty"`
	// LockRows is how many upcoming writes (create, upsert, update, and each
	// record of a collection) fail with 400 UNABLE_TO_LOCK_ROW.
	LockRows int `json:"lockRows,omitempty"`
	// CommitThenDrop makes a fraction of committed writes lose their answer
	// (the record exists, the client never hears so); nil injects nothing.
	// See [CommitThenDrop].
	CommitThenDrop *CommitThenDrop `json:"commitThenDrop,omitempty"`
	// UpsertRace is the probability in [0, 1] that an upsert which would
	// update the one record its Unique External ID names is answered 400
	// DUPLICATE_VALUE instead, as the loser of a race with that record's
	// insert can be on Salesforce; see [Faults.SetUpsertRace].
	UpsertRace float64 `json:"upsertRace,omitempty"`
	// RefuseClientCredentials refuses client_credentials grants for a
	// while with an OAuth error (by default 400 invalid_grant "no client
	// credentials user enabled", as while an app's policy propagates);
	// nil refuses nothing. See [Faults.RefuseClientCredentials].
	RefuseClientCredentials *GrantRefusal `json:"refuseClientCredentials,omitempty"`
	// IncludeOAuth extends latency, error rules and outages to the
	// /services/oauth2 endpoints; by default they hit /services/data only.
	IncludeOAuth bool `json:"includeOAuth,omitempty"`
	// Seed, when non-zero, reseeds the random source for reproducible draws.
	Seed uint64 `json:"seed,omitempty"`
}

// Faults injects failures into the simulator. It is safe for concurrent use;
// get it from [Server.Faults]. Every method takes effect for requests that
// arrive afterwards.
type Faults struct {
	mu  sync.Mutex
	cfg FaultConfig
	rng *rand.Rand
}

func newFaults() *Faults {
	return &Faults{rng: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
}

// Config returns a copy of the current settings.
func (f *Faults) Config() FaultConfig {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.cfg
	c.Errors = append([]ErrorRule(nil), f.cfg.Errors...)
	if f.cfg.Outage != nil {
		o := *f.cfg.Outage
		c.Outage = &o
	}
	if f.cfg.CommitThenDrop != nil {
		d := *f.cfg.CommitThenDrop
		c.CommitThenDrop = &d
	}
	if f.cfg.RefuseClientCredentials != nil {
		r := *f.cfg.RefuseClientCredentials
		c.RefuseClientCredentials = &r
	}
	return c
}

// Set replaces all settings. It fails, changing nothing, when a rule is out
// of range (rate outside [0,1], rates summing past 1, status not 4xx/5xx,
// unknown latency distribution or outage mode, upsertRace outside [0,1], a
// commitThenDrop out of range: see [CommitThenDrop], a
// refuseClientCredentials status that is not 4xx).
func (f *Faults) Set(c FaultConfig) error {
	if err := c.validate(); err != nil {
		return err
	}
	c.Errors = append([]ErrorRule(nil), c.Errors...)
	if c.Outage != nil {
		o := *c.Outage
		c.Outage = &o
	}
	if c.CommitThenDrop != nil {
		d := *c.CommitThenDrop
		c.CommitThenDrop = &d
		if d.Rate == 0 {
			c.CommitThenDrop = nil // rate 0 is off; GET shows it absent
		}
	}
	if c.RefuseClientCredentials != nil {
		r := *c.RefuseClientCredentials
		c.RefuseClientCredentials = &r
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cfg = c
	if c.Seed != 0 {
		f.rng = rand.New(rand.NewPCG(c.Seed, c.Seed^0x9e3779b97f4a7c15))
	}
	return nil
}

func (c FaultConfig) validate() error {
	switch c.Latency.Distribution {
	case "", LatencyFixed, LatencyUniform, LatencyNormal:
	default:
		return fmt.Errorf("sfsim: latency distribution %q unknown (use fixed, uniform or normal)", c.Latency.Distribution)
	}
	if c.Latency.Distribution == LatencyUniform && c.Latency.Max < c.Latency.Min {
		return fmt.Errorf("sfsim: uniform latency max %v is below min %v", time.Duration(c.Latency.Max), time.Duration(c.Latency.Min))
	}
	total := 0.0
	for _, r := range c.Errors {
		if r.Rate < 0 || r.Rate > 1 || math.IsNaN(r.Rate) {
			return fmt.Errorf("sfsim: error rate %v is outside [0,1]", r.Rate)
		}
		if r.Status < 400 || r.Status > 599 {
			return fmt.Errorf("sfsim: error status %d is not a 4xx or 5xx status", r.Status)
		}
		total += r.Rate
	}
	if total > 1.0000001 {
		return fmt.Errorf("sfsim: error rates add up to %v, more than 1", total)
	}
	if c.Outage != nil {
		switch c.Outage.Mode {
		case "", OutageUnavailable, OutageRefuse:
		default:
			return fmt.Errorf("sfsim: outage mode %q unknown (use unavailable or refuse)", c.Outage.Mode)
		}
	}
	if c.LockRows < 0 {
		return fmt.Errorf("sfsim: lockRows %d is negative", c.LockRows)
	}
	if err := validateUpsertRace(c.UpsertRace); err != nil {
		return err
	}
	if err := c.RefuseClientCredentials.validate(); err != nil {
		return err
	}
	return c.CommitThenDrop.validate()
}

// SetLatency sets the added latency; the zero Latency removes it.
func (f *Faults) SetLatency(l Latency) error {
	c := f.Config()
	c.Latency = l
	c.Seed = 0
	return f.Set(c)
}

// AddErrorRate adds an error rule, e.g. ErrorRule{Rate: 0.1, Status: 503}.
func (f *Faults) AddErrorRate(r ErrorRule) error {
	c := f.Config()
	c.Errors = append(c.Errors, r)
	c.Seed = 0
	return f.Set(c)
}

// ClearErrorRates removes every error rule.
func (f *Faults) ClearErrorRates() {
	f.mu.Lock()
	f.cfg.Errors = nil
	f.mu.Unlock()
}

// StartOutage begins an outage in mode ("unavailable" or "refuse") lasting d;
// d <= 0 lasts until [Faults.EndOutage] or [Faults.Reset].
func (f *Faults) StartOutage(mode string, d time.Duration, now time.Time) error {
	o := &Outage{Mode: mode}
	if d > 0 {
		o.Until = now.Add(d)
	}
	c := f.Config()
	c.Outage = o
	c.Seed = 0
	return f.Set(c)
}

// EndOutage ends any outage.
func (f *Faults) EndOutage() {
	f.mu.Lock()
	f.cfg.Outage = nil
	f.mu.Unlock()
}

// LockNextWrites makes the next n writes fail with 400 UNABLE_TO_LOCK_ROW.
func (f *Faults) LockNextWrites(n int) {
	if n < 0 {
		n = 0
	}
	f.mu.Lock()
	f.cfg.LockRows = n
	f.mu.Unlock()
}

// SetIncludeOAuth extends latency, error rules and outages to /services/oauth2.
func (f *Faults) SetIncludeOAuth(on bool) {
	f.mu.Lock()
	f.cfg.IncludeOAuth = on
	f.mu.Unlock()
}

// Reset removes every fault.
func (f *Faults) Reset() {
	f.mu.Lock()
	f.cfg = FaultConfig{}
	f.mu.Unlock()
}

// takeLock consumes one UNABLE_TO_LOCK_ROW if any are pending.
func (f *Faults) takeLock() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cfg.LockRows > 0 {
		f.cfg.LockRows--
		return true
	}
	return false
}

// decision is what the injector decided for one request.
type decision struct {
	delay  time.Duration
	refuse bool
	status int
	err    apiError
	kind   string
}

// decide draws the faults for one request. oauth says whether the request is
// for /services/oauth2, which is only faulted when IncludeOAuth is set.
func (f *Faults) decide(now time.Time, oauth bool) decision {
	f.mu.Lock()
	defer f.mu.Unlock()
	var d decision
	if oauth && !f.cfg.IncludeOAuth {
		return d
	}
	d.delay = f.latencyLocked()
	if o := f.cfg.Outage; o != nil {
		if !o.Until.IsZero() && !now.Before(o.Until) {
			f.cfg.Outage = nil
		} else if o.Mode == OutageRefuse {
			d.refuse, d.kind = true, "outageRefuse"
			return d
		} else {
			d.status, d.kind = http.StatusServiceUnavailable, "outage503"
			d.err = apiError{Code: "SERVER_UNAVAILABLE", Message: defaultFaultMessage("SERVER_UNAVAILABLE")}
			return d
		}
	}
	if len(f.cfg.Errors) > 0 {
		x := f.rng.Float64()
		acc := 0.0
		for _, r := range f.cfg.Errors {
			acc += r.Rate
			if x < acc {
				code := r.ErrorCode
				if code == "" {
					code = "UNKNOWN_EXCEPTION"
					if r.Status == http.StatusServiceUnavailable {
						code = "SERVER_UNAVAILABLE"
					}
				}
				msg := r.Message
				if msg == "" {
					msg = defaultFaultMessage(code)
				}
				d.status, d.kind = r.Status, "error"
				d.err = apiError{Code: code, Message: msg}
				return d
			}
		}
	}
	return d
}

func (f *Faults) latencyLocked() time.Duration {
	l := f.cfg.Latency
	switch l.Distribution {
	case LatencyUniform:
		lo, hi := time.Duration(l.Min), time.Duration(l.Max)
		if hi <= lo {
			return lo
		}
		return lo + time.Duration(f.rng.Int64N(int64(hi-lo)+1))
	case LatencyNormal:
		v := float64(l.Mean) + f.rng.NormFloat64()*float64(l.StdDev)
		if v < 0 {
			v = 0
		}
		return time.Duration(v)
	default:
		return time.Duration(l.Fixed)
	}
}

func defaultFaultMessage(code string) string {
	switch code {
	case "SERVER_UNAVAILABLE":
		return "Server temporarily unavailable. Please try again later."
	case "UNKNOWN_EXCEPTION":
		return "An unexpected error occurred. Please include this ErrorId if you contact support: 1190512437-16813 (-1404785104)"
	case "REQUEST_LIMIT_EXCEEDED":
		return msgLimitExceeded
	}
	return strings.ReplaceAll(strings.ToLower(code), "_", " ")
}

// applyFaults delays and possibly answers the request from the injector.
// It reports whether the request was answered (or dropped) and must stop.
func (s *Server) applyFaults(w http.ResponseWriter, r *http.Request, oauth bool) bool {
	d := s.faults.decide(s.opts.Now(), oauth)
	if d.delay > 0 {
		t := time.NewTimer(d.delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return true
		}
	}
	if d.kind == "" {
		return false
	}
	s.stats.add(func(st *Stats) { st.FaultsInjected[d.kind]++ })
	if d.refuse {
		dropConnection(w)
		return true
	}
	if oauth {
		writeJSON(w, d.status, oauthError{Error: "server_error", Description: d.err.Message})
		return true
	}
	writeErrors(w, d.status, d.err)
	return true
}

// dropConnection closes the client's connection without an answer, as an
// unreachable host would. Where the connection cannot be hijacked (HTTP/2),
// it aborts the handler, which resets the stream.
func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}
