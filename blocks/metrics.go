package blocks

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics count what coalescing saves:
//
//	sfblocks_insert_calls_total{account}       Salesforce calls that carried Inserts
//	sfblocks_insert_call_records_total{account} Inserts those calls carried
//	sfblocks_search_shared_total{account}      Searches answered by another job's call
//
// records/calls is the Inserts each call carried. A nil *Metrics counts
// nothing.
type Metrics struct {
	insertCalls   *prometheus.CounterVec
	insertRecords *prometheus.CounterVec
	shared        *prometheus.CounterVec
}

// NewMetrics returns the collectors, registered with reg when it is not
// nil; it fails when reg already holds collectors of the same names.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		insertCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sfblocks", Name: "insert_calls_total",
			Help: "Salesforce calls (single saves and sObject Collections) that carried Inserts, by account.",
		}, []string{"account"}),
		insertRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sfblocks", Name: "insert_call_records_total",
			Help: "Inserts carried by those calls, by account; divided by insert_calls_total, the Inserts per call.",
		}, []string{"account"}),
		shared: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sfblocks", Name: "search_shared_total",
			Help: "Searches answered by an identical Search's Salesforce call, by account.",
		}, []string{"account"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.insertCalls, m.insertRecords, m.shared} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("blocks: registering metrics: %w", err)
			}
		}
	}
	return m, nil
}

func (m *Metrics) insertCall(account string, records int) {
	if m == nil {
		return
	}
	m.insertCalls.WithLabelValues(account).Inc()
	m.insertRecords.WithLabelValues(account).Add(float64(records))
}

func (m *Metrics) sharedSearch(account string) {
	if m == nil {
		return
	}
	m.shared.WithLabelValues(account).Inc()
}
