package proxy

import (
	"crypto/tls"
	"maps"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Label values used when a request never reached a route or an upstream.
const (
	labelNone  = "none"
	labelOther = "OTHER"
)

// durationBuckets are classic histogram buckets for a gateway: from a
// cached answer on loopback (1ms) to a long poll cut by the write timeout
// (60s). Native histograms are exported alongside for any resolution.
var durationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// metrics are the data plane's Prometheus instruments. A nil *metrics
// records nothing, which is what Deps.Metrics == nil gives.
type metrics struct {
	requests    *prometheus.CounterVec   // listener, route, upstream, method, status_class
	duration    *prometheus.HistogramVec // listener, route, upstream, status_class
	inflight    *prometheus.GaugeVec     // listener
	bytesIn     *prometheus.CounterVec   // listener, route, upstream
	bytesOut    *prometheus.CounterVec   // listener, route, upstream
	attempts    *prometheus.HistogramVec // upstream, target, result
	upErrors    *prometheus.CounterVec   // upstream, target, kind
	upTLS       *prometheus.CounterVec   // upstream, version, result
	connsOpened *prometheus.CounterVec   // listener
	connsActive *prometheus.GaugeVec     // listener
	denied      *prometheus.CounterVec   // listener, route, reason
	clientErrs  *prometheus.CounterVec   // listener, route, reason
	edge        *edgeMetrics             // static files, compression, rate limits (edge_metrics.go)

	reqSeries seriesCache[seriesKey, requestSeries]  // children of requests, duration, bytesIn, bytesOut
	attSeries seriesCache[attemptKey, attemptSeries] // children of attempts
}

func histogramOpts(name, help string) prometheus.HistogramOpts {
	return prometheus.HistogramOpts{
		Name: name, Help: help, Buckets: durationBuckets,
		// Native histograms (Prometheus 2.40+, scraped as protobuf): about
		// 10% relative resolution, bounded in size, reset hourly at most.
		NativeHistogramBucketFactor:     1.1,
		NativeHistogramMaxBucketNumber:  160,
		NativeHistogramMinResetDuration: time.Hour,
	}
}

// newMetrics registers the data plane's metrics on reg; nil reg gives nil.
func newMetrics(reg prometheus.Registerer, s *Server) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	route := []string{"listener", "route", "upstream"}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drawbridge_http_requests_total",
			Help: "HTTP requests answered, by listener, route, upstream, method and status class (499: the client left).",
		}, append(route, "method", "status_class")),
		duration: prometheus.NewHistogramVec(histogramOpts("drawbridge_http_request_duration_seconds",
			"Time from the request head to the end of the response, as the client saw it."),
			append(route, "status_class")),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "drawbridge_http_requests_in_flight",
			Help: "Requests being served, upgraded connections included.",
		}, []string{"listener"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drawbridge_http_request_body_bytes_total",
			Help: "Request body bytes received from clients.",
		}, route),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drawbridge_http_response_body_bytes_total",
			Help: "Response body bytes sent to clients.",
		}, route),
		attempts: prometheus.NewHistogramVec(histogramOpts("drawbridge_upstream_attempt_duration_seconds",
			"Time from sending an attempt to a target until its response head arrived or it failed; "+
				"result is the status class or connect_error, timeout, tls_error, canceled, error."),
			[]string{"upstream", "target", "result"}),
		upErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drawbridge_upstream_errors_total",
			Help: "Failed attempts by kind: connect (refused, unreachable, DNS), timeout, tls, other. Client cancellations are not counted.",
		}, []string{"upstream", "target", "kind"}),
		upTLS: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drawbridge_upstream_tls_handshakes_total",
			Help: "TLS handshakes with targets, by TLS version and result.",
		}, []string{"upstream", "version", "result"}),
		connsOpened: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drawbridge_listener_connections_total",
			Help: "Client connections accepted.",
		}, []string{"listener"}),
		connsActive: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "drawbridge_listener_connections_active",
			Help: "Client connections open.",
		}, []string{"listener"}),
		denied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drawbridge_authz_denied_total",
			Help: "Requests (403) and relayed connections (closed) refused because the client's verified identity is not allowed, by listener, route and reason (identity_not_allowed, no_identity).",
		}, []string{"listener", "route", "reason"}),
		clientErrs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drawbridge_client_errors_total",
			Help: "Requests failed by the client's own request body, never counted against a target, by listener, route and reason (body_malformed, body_incomplete, body_timeout, body_too_large).",
		}, []string{"listener", "route", "reason"}),
	}
	cs := []prometheus.Collector{m.requests, m.duration, m.inflight, m.bytesIn, m.bytesOut, m.attempts,
		m.upErrors, m.upTLS, m.connsOpened, m.connsActive, m.denied, m.clientErrs, &targetCollector{s: s}}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	var err error
	m.edge, err = newEdgeMetrics(reg)
	return m, err
}

// authzDenied counts a refusal by identity.
func (m *metrics) authzDenied(listener, route, reason string) {
	if m == nil {
		return
	}
	m.denied.WithLabelValues(listener, route, reason).Inc()
}

// clientError counts a request failed by the client's own body.
func (m *metrics) clientError(listener, route, reason string) {
	if m == nil {
		return
	}
	m.clientErrs.WithLabelValues(listener, route, reason).Inc()
}

// request observes one finished request.
func (m *metrics) request(ex *exchange, method string, status int, took time.Duration, in, out int64, traceID string) {
	if m == nil {
		return
	}
	route, up := ex.route, ex.upstream
	if route == "" {
		route, up = labelNone, labelNone
	}
	if up == "" {
		up = labelNone // a route that serves files
	}
	k := seriesKey{ex.listener, route, up}
	s := m.reqSeries.get(k)
	mi, ci := methodIndex(method), classIndex(status)
	cached(&s.requests[mi][ci], func() prometheus.Counter {
		return m.requests.WithLabelValues(k.listener, k.route, k.upstream, methodLabels[mi], classLabels[ci])
	}).Inc()
	observeExemplar(cached(&s.duration[ci], func() prometheus.Observer {
		return m.duration.WithLabelValues(k.listener, k.route, k.upstream, classLabels[ci])
	}), took.Seconds(), traceID)
	if in > 0 {
		cached(&s.bytesIn, func() prometheus.Counter {
			return m.bytesIn.WithLabelValues(k.listener, k.route, k.upstream)
		}).Add(float64(in))
	}
	if out > 0 {
		cached(&s.bytesOut, func() prometheus.Counter {
			return m.bytesOut.WithLabelValues(k.listener, k.route, k.upstream)
		}).Add(float64(out))
	}
}

// attempt observes one attempt toward a target. Retries are counted by
// the attempt loop (drawbridge_upstream_retries_total, metrics.go).
func (m *metrics) attempt(upstream, target string, status int, took time.Duration, err error, traceID string) {
	if m == nil {
		return
	}
	if err == nil {
		ci := classIndex(status)
		s := m.attSeries.get(attemptKey{upstream, target})
		observeExemplar(cached(&s.attempts[ci], func() prometheus.Observer {
			return m.attempts.WithLabelValues(upstream, target, classLabels[ci])
		}), took.Seconds(), traceID)
		return
	}
	kind := errorKind(err)
	if kind != "canceled" && kind != "client" {
		m.upErrors.WithLabelValues(upstream, target, kind).Inc()
	}
	observeExemplar(m.attempts.WithLabelValues(upstream, target, attemptResult[kind]), took.Seconds(), traceID)
}

// tlsHandshake observes a TLS handshake with a target.
func (m *metrics) tlsHandshake(upstream string, state tls.ConnectionState, err error) {
	if m == nil {
		return
	}
	result, version := "success", tls.VersionName(state.Version)
	if err != nil {
		result, version = "failure", "unknown"
	}
	m.upTLS.WithLabelValues(upstream, version, result).Inc()
}

// listenerConns returns the connection counters of one listener, or nil.
func (m *metrics) listenerConns(listener string) *connMetrics {
	if m == nil {
		return nil
	}
	return &connMetrics{opened: m.connsOpened.WithLabelValues(listener), active: m.connsActive.WithLabelValues(listener)}
}

// inflightGauge returns the in-flight gauge of one listener, or nil.
func (m *metrics) inflightGauge(listener string) prometheus.Gauge {
	if m == nil {
		return nil
	}
	return m.inflight.WithLabelValues(listener)
}

type connMetrics struct {
	opened prometheus.Counter
	active prometheus.Gauge
}

// Opened counts a connection accepted (listen.Counter).
func (c *connMetrics) Opened() {
	if c != nil {
		c.opened.Inc()
		c.active.Inc()
	}
}

// Closed counts a connection closed (listen.Counter).
func (c *connMetrics) Closed() {
	if c != nil {
		c.active.Dec()
	}
}

// observeExemplar records v with the trace ID as exemplar when the request was sampled.
func observeExemplar(o prometheus.Observer, v float64, traceID string) {
	if eo, ok := o.(prometheus.ExemplarObserver); ok && traceID != "" {
		eo.ObserveWithExemplar(v, prometheus.Labels{"trace_id": traceID})
		return
	}
	o.Observe(v)
}

// attemptResult is the result label of a failed attempt, by error kind.
var attemptResult = map[string]string{
	"canceled": "canceled", "timeout": "timeout", "connect": "connect_error", "tls": "tls_error", "other": "error",
	"client": "client_error",
}

// methodLabel keeps the method label bounded: a client may send any token.
func methodLabel(m string) string { return methodLabels[methodIndex(m)] }

// errorKind is an attempt error's metric label (classifyErr's table).
func errorKind(err error) string {
	return failures[classifyErr(err)].label
}

// targetCollector reports each target's state from the balancer's atomics
// at scrape time: the same numbers the status page shows. Health checks,
// ejections and breakers have their own series (health and breaker
// packages); this is the balancer's overall verdict.
type targetCollector struct{ s *Server }

var (
	descTargetAvailable = prometheus.NewDesc("drawbridge_upstream_target_available",
		"1 when the balancer may send new attempts to the target (healthy, not ejected, breaker closed, not draining).",
		[]string{"upstream", "target"}, nil)
	descTargetInFlight = prometheus.NewDesc("drawbridge_upstream_target_in_flight",
		"Attempts in progress on the target.",
		[]string{"upstream", "target"}, nil)
)

func (c *targetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descTargetAvailable
	ch <- descTargetInFlight
}

func (c *targetCollector) Collect(ch chan<- prometheus.Metric) {
	ups := c.s.upstreams()
	for _, name := range slices.Sorted(maps.Keys(ups)) {
		for _, t := range ups[name].pool.Targets() {
			ch <- prometheus.MustNewConstMetric(descTargetAvailable, prometheus.GaugeValue, boolFloat(t.Available()), name, t.Addr)
			ch <- prometheus.MustNewConstMetric(descTargetInFlight, prometheus.GaugeValue, float64(t.InFlight()), name, t.Addr)
		}
	}
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
