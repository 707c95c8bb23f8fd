package sfsim

import (
	"fmt"
	"math"
	"net/http"
	"strings"

	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim/simdb"
)

// The simulator's database makes an upsert's lookup and write one atomic
// step, so upserts of one new value racing each other always end as one
// create and some updates. Salesforce does not promise that: the loser of
// such a race can be answered 400 DUPLICATE_VALUE "duplicate value found:
// <Field> duplicates value on record with id: <id>" (as integrators report
// and Salesforce support has confirmed for near-simultaneous upserts). The
// upsertRace fault produces that answer on demand, so a client's handling of
// it can be tested: still one record, never two.

// SetUpsertRace makes a fraction rate of upserts that would update an
// existing record by a Unique External ID (PATCH
// sobjects/{Object}/{Field}/{value}, one match) answer 400 DUPLICATE_VALUE
// instead, writing nothing, as the loser of a race with the insert of that
// record is answered. 0 removes it. It fails, changing nothing, on a rate
// outside [0,1].
func (f *Faults) SetUpsertRace(rate float64) error {
	if err := validateUpsertRace(rate); err != nil {
		return err
	}
	f.mu.Lock()
	f.cfg.UpsertRace = rate
	f.mu.Unlock()
	return nil
}

func validateUpsertRace(rate float64) error {
	if rate < 0 || rate > 1 || math.IsNaN(rate) {
		return fmt.Errorf("sfsim: upsertRace %v is outside [0,1]", rate)
	}
	return nil
}

// drawUpsertRace reports whether this upsert loses a simulated race.
func (f *Faults) drawUpsertRace() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cfg.UpsertRace > 0 && f.rng.Float64() < f.cfg.UpsertRace
}

// upsertRaceError is the answer of an upsert that lost a simulated race, or
// nil when the fault does not fire: it fires only where a real race could
// give it, on a unique External ID field that already names one record.
func (s *Server) upsertRaceError(object, field, value string) *simdb.Error {
	o, err := s.db.Describe(object)
	if err != nil {
		return nil
	}
	var f *simdb.FieldSchema
	for i := range o.Fields {
		if strings.EqualFold(o.Fields[i].Name, field) {
			f = &o.Fields[i]
		}
	}
	if f == nil || !f.ExternalID || !f.Unique {
		return nil
	}
	ids := s.db.MatchExternalID(object, field, value)
	if len(ids) != 1 || !s.faults.drawUpsertRace() {
		return nil
	}
	s.stats.add(func(st *Stats) { st.FaultsInjected["upsertRace"]++ })
	return &simdb.Error{Status: http.StatusBadRequest, Code: simdb.CodeDuplicateValue,
		Message: "duplicate value found: " + f.Name + " duplicates value on record with id: " + ids[0], Fields: []string{}}
}
