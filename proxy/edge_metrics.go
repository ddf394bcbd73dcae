package proxy

import "github.com/prometheus/client_golang/prometheus"

// edgeMetrics are the series of the edge features a route can turn on:
// static files, compression, rate and concurrency limits. Labels are
// bounded: route names come from the configuration, the rest from fixed sets.
type edgeMetrics struct {
	static          *prometheus.CounterVec // route, result (proxy/static.Result*), encoding
	compressed      *prometheus.CounterVec // route, encoding
	compBytes       *prometheus.CounterVec // route, stage (uncompressed, compressed)
	rateRefused     *prometheus.CounterVec // route
	inflightRefused *prometheus.CounterVec // route
}

func newEdgeMetrics(reg prometheus.Registerer) (*edgeMetrics, error) {
	m := &edgeMetrics{
		static: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drawbridge_static_responses_total",
			Help: "Responses of static routes, by result (file, spa_fallback, not_found, redirect, not_allowed, error) and the precompressed coding served (identity when none).",
		}, []string{"route", "result", "encoding"}),
		compressed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drawbridge_compressed_responses_total",
			Help: "Responses drawbridge compressed, by route and encoding (zstd, gzip).",
		}, []string{"route", "encoding"}),
		compBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drawbridge_compression_bytes_total",
			Help: "Body bytes of compressed responses before (stage uncompressed) and after (compressed) encoding, by route.",
		}, []string{"route", "stage"}),
	}
	m.rateRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "drawbridge_ratelimit_refused_total",
		Help: "Requests refused with 429 by a route's rate limit.",
	}, []string{"route"})
	m.inflightRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "drawbridge_route_in_flight_refused_total",
		Help: "Requests refused with 503 because the route had max_in_flight requests in progress.",
	}, []string{"route"})
	for _, c := range []prometheus.Collector{m.static, m.compressed, m.compBytes, m.rateRefused, m.inflightRefused} {
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

func (m *edgeMetrics) compression(route, encoding string, in, out int64) {
	if m == nil {
		return
	}
	m.compressed.WithLabelValues(route, encoding).Inc()
	m.compBytes.WithLabelValues(route, "uncompressed").Add(float64(in))
	m.compBytes.WithLabelValues(route, "compressed").Add(float64(out))
}

func (m *edgeMetrics) refused(route, reason string) {
	if m == nil {
		return
	}
	if reason == limitedRate {
		m.rateRefused.WithLabelValues(route).Inc()
	} else {
		m.inflightRefused.WithLabelValues(route).Inc()
	}
}
