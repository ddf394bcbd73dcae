package proxy

import (
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/drawbridge-proxy/drawbridge/proxy/compress"
	"github.com/drawbridge-proxy/drawbridge/proxy/ratelimit"
	"github.com/drawbridge-proxy/drawbridge/telemetry"
	"github.com/drawbridge-proxy/drawbridge/telemetry/configerr"
)

// wrapEdge builds what answers the route's requests once the listener has
// admitted them: its limits, then its compression, around its files or
// its proxy.
func (r *route) wrapEdge(rc RouteConfig, m *metrics, log *slog.Logger) {
	var h http.Handler = r.forward
	if r.static != nil {
		h = r.static
	}
	em := m.edgeOf()
	if rc.Compression != nil {
		c := compress.New(*rc.Compression, compress.Deps{
			Compressed: func(req *http.Request, encoding string, in, out int64) {
				exchangeFrom(req.Context()).encoding = encoding
				em.compression(r.name, encoding, in, out)
			},
		})
		h = c.Wrap(h)
	}
	if rc.RateLimit != nil || rc.MaxInFlight > 0 {
		l := &routeLimits{route: r.name, next: h, gate: ratelimit.NewGate(rc.MaxInFlight), metrics: em, log: log}
		if rc.RateLimit != nil {
			l.cfg, l.buckets = *rc.RateLimit, ratelimit.New(*rc.RateLimit)
		}
		h = l
	}
	r.serve = h
}

// handler is what answers the route's requests.
func (r *route) handler() http.Handler {
	if r.serve != nil {
		return r.serve
	}
	return r.forward
}

// Reasons a route limit refuses a request, in logs and metrics.
const (
	limitedRate     = "rate"
	limitedInFlight = "in_flight"
)

// routeLimits applies a route's rate limit and in-flight cap. Its state
// is per instance and starts afresh when a reload rebuilds the route.
type routeLimits struct {
	route   string
	cfg     ratelimit.Config
	buckets *ratelimit.Limiter // nil: no rate limit
	gate    *ratelimit.Gate
	next    http.Handler
	metrics *edgeMetrics
	log     *slog.Logger
	lines   telemetry.LogLimiter // refusal floods log a few lines; metrics count every one
}

func (l *routeLimits) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	ex := exchangeFrom(req.Context())
	if l.buckets != nil {
		if ok, wait := l.buckets.Allow(l.key(req, ex), time.Now()); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			l.refuse(w, ex, http.StatusTooManyRequests, limitedRate)
			return
		}
	}
	leave, ok := l.gate.Enter()
	if !ok {
		w.Header().Set("Retry-After", "1")
		l.refuse(w, ex, http.StatusServiceUnavailable, limitedInFlight)
		return
	}
	defer leave()
	l.next.ServeHTTP(w, req)
}

// key is the request's bucket key by the configured kind.
func (l *routeLimits) key(req *http.Request, ex *exchange) string {
	switch l.cfg.Key {
	case ratelimit.KeyIdentity:
		return ex.identity // "" (one bucket) for clients without one
	case ratelimit.KeyHeader:
		return req.Header.Get(l.cfg.Header)
	case ratelimit.KeyRoute:
		return ""
	}
	return ex.clientIP
}

func (l *routeLimits) refuse(w http.ResponseWriter, ex *exchange, status int, reason string) {
	ex.limited = reason
	l.metrics.refused(l.route, reason)
	if ok, suppressed := l.lines.Allow(reason); ok && l.log != nil {
		// The key is not logged: it may be a header value (an API key).
		l.log.Warn("request refused: route limit", "route", l.route, "reason", reason, "client_ip", ex.clientIP,
			"request_id", ex.requestID, suppressed)
	}
	msg := "too many requests"
	if status == http.StatusServiceUnavailable {
		msg = "too many requests in progress"
	}
	writeRefusal(w, status, msg, ex.requestID)
}

// validateEdge checks the route's edge features against its listener.
func (r *RouteConfig) validateEdge(l *ListenerConfig, path string, p *configerr.List) {
	if isStream(l.Protocol) {
		for _, f := range []struct {
			key string
			set bool
		}{{"compression", r.Compression != nil}, {"rate_limit", r.RateLimit != nil}, {"max_in_flight", r.MaxInFlight != 0}} {
			if f.set {
				p.Add(path+"."+f.key, "only http routes have %s", f.key)
			}
		}
		return
	}
	if r.Compression != nil {
		p.Nest(path+".compression", r.Compression.Validate())
	}
	if r.RateLimit != nil {
		p.Nest(path+".rate_limit", r.RateLimit.Validate())
		if r.RateLimit.Key == ratelimit.KeyIdentity && l.TLS.Mode != TLSMutual {
			p.Add(path+".rate_limit.key", "identity needs a listener with tls.mode: mutual")
		}
	}
	if r.MaxInFlight < 0 {
		p.Add(path+".max_in_flight", "must be >= 0, got %d", r.MaxInFlight)
	}
}
