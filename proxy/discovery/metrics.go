package discovery

import "github.com/prometheus/client_golang/prometheus"

// Metrics are service discovery's Prometheus series. A nil *Metrics records nothing.
type Metrics struct {
	addresses *prometheus.GaugeVec
	failures  *prometheus.CounterVec
	failing   *prometheus.GaugeVec
}

// NewMetrics registers the series with reg. A nil reg returns nil.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		return nil, nil
	}
	labels := []string{"upstream", "name"}
	m := &Metrics{
		addresses: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "drawbridge_discovery_addresses",
			Help: "Addresses the last good lookup of a target name returned.",
		}, labels),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drawbridge_discovery_failures_total",
			Help: "Failed lookups of a target name; the last good addresses are kept.",
		}, labels),
		failing: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "drawbridge_discovery_failing",
			Help: "1 while the last lookup of a target name failed, else 0.",
		}, labels),
	}
	for _, c := range []prometheus.Collector{m.addresses, m.failures, m.failing} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) resolved(upstream, name string, n int) {
	if m != nil {
		m.addresses.WithLabelValues(upstream, name).Set(float64(n))
		m.failing.WithLabelValues(upstream, name).Set(0)
	}
}

func (m *Metrics) failed(upstream, name string) {
	if m != nil {
		m.failures.WithLabelValues(upstream, name).Inc()
		m.failing.WithLabelValues(upstream, name).Set(1)
	}
}
