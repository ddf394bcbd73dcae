package proxy

import "github.com/prometheus/client_golang/prometheus"

// edgeMetrics are the series of the edge features a route can turn on:
// static files, compression, rate and concurrency limits. Labels are
// bounded: route names come from the configuration, the rest from fixed sets.
type edgeMetrics struct {
	static *prometheus.CounterVec // route, result (proxy/static.Result*), encoding
}

func newEdgeMetrics(reg prometheus.Registerer) (*edgeMetrics, error) {
	m := &edgeMetrics{
		static: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drawbridge_static_responses_total",
			Help: "Responses of static routes, by result (file, spa_fallback, not_found, redirect, not_allowed, error) and the precompressed coding served (identity when none).",
		}, []string{"route", "result", "encoding"}),
	}
	for _, c := range []prometheus.Collector{m.static} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// edgeOf is m's edge metrics; nil when m is (no registerer).
func (m *metrics) edgeOf() *edgeMetrics {
	if m == nil {
		return nil
	}
	return m.edge
}

func (m *edgeMetrics) staticResult(route, result, encoding string) {
	if m == nil {
		return
	}
	if encoding == "" {
		encoding = "identity"
	}
	m.static.WithLabelValues(route, result, encoding).Inc()
}
