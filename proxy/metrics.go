package proxy

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/drawbridge-proxy/drawbridge/health"
	"github.com/drawbridge-proxy/drawbridge/proxy/breaker"
	"github.com/drawbridge-proxy/drawbridge/proxy/discovery"
)

// resilienceMetrics are the series of retries, fallbacks and unavailable
// upstreams, and those of the parts the proxy composes. Every field may be
// nil (no registerer), which records nothing.
type resilienceMetrics struct {
	health    *health.Metrics
	breaker   *breaker.Metrics
	discovery *discovery.Metrics

	retries   *prometheus.CounterVec
	exhausted *prometheus.CounterVec
	noTarget  *prometheus.CounterVec
	fallbacks *prometheus.CounterVec
}

func newResilienceMetrics(reg prometheus.Registerer) (*resilienceMetrics, error) {
	m := &resilienceMetrics{}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.health, err = health.NewMetrics(reg); err != nil {
		return nil, err
	}
	if m.breaker, err = breaker.NewMetrics(reg); err != nil {
		return nil, err
	}
	if m.discovery, err = discovery.NewMetrics(reg); err != nil {
		return nil, err
	}
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "drawbridge_upstream_retries_total",
		Help: "Attempts that were retries of a failed attempt.",
	}, []string{"upstream"})
	m.exhausted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "drawbridge_upstream_retry_budget_exhausted_total",
		Help: "Retries refused because the upstream's retry budget was spent.",
	}, []string{"upstream"})
	m.noTarget = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "drawbridge_upstream_unavailable_total",
		Help: "Requests that found no available target (all unhealthy, ejected or behind open breakers).",
	}, []string{"upstream"})
	m.fallbacks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "drawbridge_route_fallbacks_total",
		Help: "Requests answered by a route's fallback, by kind (static or upstream).",
	}, []string{"route", "kind"})
	for _, c := range []prometheus.Collector{m.retries, m.exhausted, m.noTarget, m.fallbacks} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func inc(c *prometheus.CounterVec, labels ...string) {
	if c != nil {
		c.WithLabelValues(labels...).Inc()
	}
}
