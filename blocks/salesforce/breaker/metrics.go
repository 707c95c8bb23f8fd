package breaker

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the breaker collectors, shared by every breaker of a [Set].
type metrics struct {
	state       *prometheus.GaugeVec
	transitions *prometheus.CounterVec
	rejections  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "sfblocks", Subsystem: "breaker", Name: "state",
			Help: "State of an account's Salesforce circuit breaker: 0 closed, 1 half-open, 2 open.",
		}, []string{"account"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sfblocks", Subsystem: "breaker", Name: "transitions_total",
			Help: "State changes of an account's Salesforce circuit breaker, by the state entered.",
		}, []string{"account", "to"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sfblocks", Subsystem: "breaker", Name: "rejected_total",
			Help: "Salesforce calls an account's circuit breaker failed at once, without sending them.",
		}, []string{"account"}),
	}
	var err error
	if m.state, err = register(reg, m.state); err != nil {
		return nil, err
	}
	if m.transitions, err = register(reg, m.transitions); err != nil {
		return nil, err
	}
	if m.rejections, err = register(reg, m.rejections); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or adopts the identical collector already there
// (a second Set on the same registry shares the series).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}

// init exports a new breaker as closed, so the series exists before the
// first transition.
func (m *metrics) init(account string) {
	m.state.WithLabelValues(account).Set(float64(StateClosed))
	m.rejections.WithLabelValues(account)
}

func (m *metrics) transition(account string, to State) {
	m.state.WithLabelValues(account).Set(float64(to))
	m.transitions.WithLabelValues(account, to.String()).Inc()
}

func (m *metrics) rejected(account string) {
	m.rejections.WithLabelValues(account).Inc()
}
