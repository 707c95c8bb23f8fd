package sfsim

import (
	"fmt"
	"math"
	"net/http"
	"time"
)

// Modes of [CommitThenDrop.Mode]: how the answer to a committed write is lost.
const (
	// CommitDrop closes the connection at once, without an answer: the
	// client sees EOF or a reset, as when a proxy or the network dies after
	// Salesforce committed.
	CommitDrop = "drop"
	// CommitWithhold keeps the connection open and silent for
	// [CommitThenDrop.Delay], then closes it: the client times out first,
	// as when Salesforce commits and then stalls past the client's deadline.
	CommitWithhold = "withhold"
)

// DefaultWithholdDelay is how long [CommitWithhold] keeps the answer when
// Delay is zero: past blocks/salesforce's 30-second default call timeout, so
// that client gives up first.
const DefaultWithholdDelay = time.Minute

// CommitThenDrop is the fault behind duplicate records in production: the
// write is committed (the record exists, [Stats.RecordsCreated] counts it)
// and then the client never learns so, and a naive retry creates it again.
// It applies to the writes that create records: sObject create (POST
// sobjects/{Object}), upsert (PATCH sobjects/{Object}/{Field}/{value}) and
// sObject Collections (POST composite/sobjects, PATCH
// composite/sobjects/{Object}/{Field}), and is drawn only for a request that
// committed something (not for one answered with an error, nor for an
// allOrNone collection that rolled back).
type CommitThenDrop struct {
	// Rate is the probability in [0, 1] that a committed write loses its
	// answer; 0 turns the fault off. Drawn from the same seeded source as
	// the error rules ([FaultConfig.Seed]).
	Rate float64 `json:"rate"`
	// Mode is "drop" (the default) or "withhold"; see [CommitDrop] and
	// [CommitWithhold].
	Mode string `json:"mode,omitempty"`
	// Delay is how long "withhold" keeps the connection silent before it
	// closes it; 0 means [DefaultWithholdDelay]. The wait also ends when the
	// client goes away or the server closes. It must be 0 for "drop".
	Delay Duration `json:"delay,omitempty"`
}

func (c *CommitThenDrop) validate() error {
	if c == nil {
		return nil
	}
	if c.Rate < 0 || c.Rate > 1 || math.IsNaN(c.Rate) {
		return fmt.Errorf("sfsim: commitThenDrop.rate %v is outside [0,1]", c.Rate)
	}
	switch c.Mode {
	case "", CommitDrop, CommitWithhold:
	default:
		return fmt.Errorf("sfsim: commitThenDrop.mode %q unknown (use %q or %q)", c.Mode, CommitDrop, CommitWithhold)
	}
	if c.Delay < 0 {
		return fmt.Errorf("sfsim: commitThenDrop.delay %v is negative (use 0 for the %v default)", time.Duration(c.Delay), DefaultWithholdDelay)
	}
	if c.Delay != 0 && c.Mode != CommitWithhold {
		return fmt.Errorf("sfsim: commitThenDrop.delay %v applies to mode %q only", time.Duration(c.Delay), CommitWithhold)
	}
	return nil
}

// SetCommitThenDrop makes a fraction rate of committed writes lose their
// answer, in mode "drop" or "withhold" (see [CommitThenDrop]); delay is the
// withhold time (0 for the default, and 0 for "drop"). A rate of 0 removes
// the fault. It fails, changing nothing, on a rate outside [0,1], an unknown
// mode or a delay that does not fit the mode.
func (f *Faults) SetCommitThenDrop(rate float64, mode string, delay time.Duration) error {
	var ctd *CommitThenDrop
	if rate != 0 || mode != "" || delay != 0 {
		ctd = &CommitThenDrop{Rate: rate, Mode: mode, Delay: Duration(delay)}
	}
	if err := ctd.validate(); err != nil {
		return err
	}
	if ctd != nil && ctd.Rate == 0 {
		ctd = nil
	}
	f.mu.Lock()
	f.cfg.CommitThenDrop = ctd
	f.mu.Unlock()
	return nil
}

// drawCommitThenDrop decides whether a committed write loses its answer,
// and how.
func (f *Faults) drawCommitThenDrop() (mode string, delay time.Duration, lose bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.cfg.CommitThenDrop
	if c == nil || c.Rate <= 0 || f.rng.Float64() >= c.Rate {
		return "", 0, false
	}
	mode, delay = c.Mode, time.Duration(c.Delay)
	if mode == "" {
		mode = CommitDrop
	}
	if mode == CommitWithhold && delay == 0 {
		delay = DefaultWithholdDelay
	}
	return mode, delay, true
}

// loseAnswer is called by a write handler after it committed and before it
// answers. When the commit-then-drop fault fires it counts it (created is
// how many records the write created) and loses the answer, and reports
// true: the handler must then write nothing.
func (s *Server) loseAnswer(w http.ResponseWriter, r *http.Request, created int) bool {
	mode, delay, lose := s.faults.drawCommitThenDrop()
	if !lose {
		return false
	}
	kind := "commitThenDrop"
	if mode == CommitWithhold {
		kind = "commitThenWithhold"
	}
	s.stats.add(func(st *Stats) {
		st.FaultsInjected[kind]++
		st.RecordsCreatedUnanswered += int64(created)
	})
	if mode == CommitWithhold {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
		case <-s.closing:
			t.Stop()
		}
	}
	dropConnection(w)
	return true
}
