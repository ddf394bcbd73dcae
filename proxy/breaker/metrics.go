package breaker

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the breakers' Prometheus series. A nil *Metrics records nothing.
type Metrics struct {
	state       *prometheus.GaugeVec
	transitions *prometheus.CounterVec
}

// NewMetrics registers the breaker series with reg. A nil reg returns nil.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &Metrics{
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "drawbridge_breaker_state",
			Help: "Circuit breaker state per upstream target: 0 closed, 1 half-open, 2 open. " +
				"route is empty for the upstream's own breakers.",
		}, []string{"upstream", "route", "target"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drawbridge_breaker_transitions_total",
			Help: "Circuit breaker state changes, by the state entered.",
		}, []string{"upstream", "route", "target", "to"}),
	}
	for _, c := range []prometheus.Collector{m.state, m.transitions} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// transition records a state change; to < 0 records a new, closed breaker.
func (m *Metrics) transition(upstream, route, target string, to state) {
	if m == nil {
		return
	}
	if to < 0 {
		m.state.WithLabelValues(upstream, route, target).Set(float64(stateClosed))
		return
	}
	m.state.WithLabelValues(upstream, route, target).Set(float64(to))
	m.transitions.WithLabelValues(upstream, route, target, to.String()).Inc()
}

// forget drops the series of a removed target.
func (m *Metrics) forget(upstream, route, target string) {
	if m == nil {
		return
	}
	labels := prometheus.Labels{"upstream": upstream, "route": route, "target": target}
	m.state.Delete(labels)
	m.transitions.DeletePartialMatch(labels)
}
