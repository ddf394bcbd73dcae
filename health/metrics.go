package health

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Prometheus series of active checks and outlier
// detection. A nil *Metrics records nothing.
type Metrics struct {
	healthy   *prometheus.GaugeVec
	checks    *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	ejections *prometheus.CounterVec
	ejected   *prometheus.GaugeVec
}

// NewMetrics registers the series with reg. A nil reg returns nil.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		return nil, nil
	}
	target := []string{"upstream", "target"}
	m := &Metrics{
		healthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "drawbridge_upstream_target_healthy",
			Help: "1 if the target passes its active health checks (or, with service discovery, has joined), 0 if not. " +
				"Only for upstreams with checks or discovery.",
		}, target),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drawbridge_health_checks_total",
			Help: "Active health checks by result (pass or fail).",
		}, []string{"upstream", "target", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "drawbridge_health_check_duration_seconds",
			Help:    "How long active health checks took, failed ones included.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"upstream"}),
		ejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drawbridge_outlier_ejections_total",
			Help: "Targets ejected by passive outlier detection.",
		}, target),
		ejected: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "drawbridge_outlier_ejected",
			Help: "1 while passive outlier detection keeps the target out, else 0.",
		}, target),
	}
	for _, c := range []prometheus.Collector{m.healthy, m.checks, m.duration, m.ejections, m.ejected} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (m *Metrics) setHealthy(upstream, target string, ok bool) {
	if m != nil {
		m.healthy.WithLabelValues(upstream, target).Set(b2f(ok))
	}
}

func (m *Metrics) checked(upstream, target string, ok bool, took time.Duration) {
	if m == nil {
		return
	}
	result := "fail"
	if ok {
		result = "pass"
	}
	m.checks.WithLabelValues(upstream, target, result).Inc()
	m.duration.WithLabelValues(upstream).Observe(took.Seconds())
}

func (m *Metrics) setEjected(upstream, target string, ejected bool) {
	if m == nil {
		return
	}
	if ejected {
		m.ejections.WithLabelValues(upstream, target).Inc()
	}
	m.ejected.WithLabelValues(upstream, target).Set(b2f(ejected))
}

// forgetChecks drops the check series of a removed target.
func (m *Metrics) forgetChecks(upstream, target string) {
	if m == nil {
		return
	}
	l := prometheus.Labels{"upstream": upstream, "target": target}
	m.healthy.Delete(l)
	m.checks.DeletePartialMatch(l)
}

// forgetOutlier drops the outlier series of a removed target.
func (m *Metrics) forgetOutlier(upstream, target string) {
	if m == nil {
		return
	}
	l := prometheus.Labels{"upstream": upstream, "target": target}
	m.ejections.Delete(l)
	m.ejected.Delete(l)
}
