package proxy

import (
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/drawbridge-proxy/drawbridge/pki/identity"
	"github.com/drawbridge-proxy/drawbridge/proxy/listen"
	"github.com/drawbridge-proxy/drawbridge/telemetry"
)

// noDeadline clears a connection deadline.
var noDeadline time.Time

// listenerHandler is the http.Handler of one listener. Its policy (routes
// and the rest a reload may change) sits behind an atomic pointer, so a
// reload swaps it while requests are in flight.
type listenerHandler struct {
	name     string
	policy   atomic.Pointer[listenerPolicy]
	errs     *errorWriter
	inflight *listen.InFlight
	metrics  *metrics
	tracing  *tracing
	active   prometheus.Gauge // in-flight requests of this listener; nil without metrics
	log      *slog.Logger
	mutual   bool // tls.mode mutual: requests carry a verified client identity

	denials  telemetry.LogLimiter // holds back floods of 403 lines; metrics count every one
	refusals telemetry.LogLimiter // the same for malformed requests the native engine refuses
}

func (h *listenerHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.inflight.Begin()
	defer h.inflight.End()
	r = withConnTLS(r)
	p := h.policy.Load()
	ex := &exchange{start: time.Now(), listener: h.name}
	h.begin()
	r = h.tracing.startServer(r, ex)
	ex.rec.ResponseWriter = w
	rec := &ex.rec
	var body *meteredBody
	if r.Body != nil && r.Body != http.NoBody {
		body = &ex.body
		body.ReadCloser = r.Body
		r.Body = body
	}
	defer func() { h.finish(p.access, r, rec, ex, body) }()

	ex.requestID = r.Header.Get(HeaderRequestID)
	if !validRequestID(ex.requestID) {
		ex.requestID = ex.ownRequestID()
	}
	ex.clientIP, ex.peerTrusted = p.trusted.clientIP(r.RemoteAddr, r.Header["X-Forwarded-For"])
	if p.hsts != "" {
		rec.Header().Set(headerHSTS, p.hsts)
		ex.hsts = true
	}
	if r.TLS != nil && h.mutual {
		if id, err := identity.FromConnectionState(*r.TLS); err == nil {
			ex.identity = id.String()
		}
	}

	if status := h.screen(r, ex); status != 0 {
		if r.Close {
			rec.Header().Set("Connection", "close")
		}
		h.errs.write(rec, status, ex.requestID)
		return
	}
	if p.redirect != nil {
		ex.route = routeRedirect
		p.redirect.ServeHTTP(rec, ex.bind(r))
		return
	}
	if p.allow != nil && !h.authorize(ex, p.allow) {
		h.errs.write(rec, http.StatusForbidden, ex.requestID)
		return
	}
	rte, knownHost := p.routes.match(r, ex.path)
	if rte == nil {
		status := http.StatusNotFound
		if !knownHost {
			status = p.unknown
		}
		h.errs.write(rec, status, ex.requestID)
		return
	}
	ex.route, ex.routePrefix = rte.name, rte.prefix
	if rte.upstream != nil {
		ex.upstream = rte.upstream.name
	}
	if rte.allow != nil && !h.authorize(ex, rte.allow) {
		h.errs.write(rec, http.StatusForbidden, ex.requestID)
		return
	}
	if r.ContentLength > rte.maxBody {
		h.errs.write(rec, http.StatusRequestEntityTooLarge, ex.requestID)
		return
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(rec, r.Body, rte.maxBody)
	}
	rte.allowUpgrade(r.Header)
	ex.rw = w
	rte.handler().ServeHTTP(rec, ex.bind(r))
	if ex.upgraded {
		if fc, ok := r.Context().Value(framingKey{}).(*framingConn); ok {
			fc.stop()
		}
	}
}

// screen applies the checks every request passes before routing and
// returns a non-zero status to refuse it.
func (h *listenerHandler) screen(r *http.Request, ex *exchange) int {
	if overStreamBudget(r) {
		r.Close = true // Connection: close, a GOAWAY on HTTP/2
		return http.StatusTooManyRequests
	}
	if fc, ok := r.Context().Value(framingKey{}).(*framingConn); ok && fc.nextAmbiguous() {
		// Request smuggling needs two parsers to disagree on framing;
		// refuse the message and the connection it came on.
		r.Close = true
		return http.StatusBadRequest
	}
	if r.Method == http.MethodConnect {
		return http.StatusMethodNotAllowed
	}
	if hasAmbiguousEscapes(r.URL.RawPath) {
		return http.StatusBadRequest
	}
	clean, ok := normalizePath(r.URL.Path)
	if !ok {
		return http.StatusBadRequest
	}
	ex.path, ex.pathChanged = clean, clean != r.URL.Path
	return 0
}

type framingKey struct{}

// withConnTLS gives a request on an HTTP/1 TLS connection under the
// framing check its connection state: http.Server cannot see the
// *tls.Conn inside the framingConn (tlsframing.go).
func withConnTLS(r *http.Request) *http.Request {
	if r.TLS != nil {
		return r
	}
	if fc, ok := r.Context().Value(framingKey{}).(*framingConn); ok && fc.tls != nil {
		r.TLS = fc.tls
	}
	return r
}

// headerHSTS is set on every response of a TLS listener with hsts_max_age
// (RFC 6797); an upstream's own value is replaced.
const headerHSTS = "Strict-Transport-Security"

// authorize reports whether the request's verified identity is in allow;
// a refusal is logged with its reason and counted.
func (h *listenerHandler) authorize(ex *exchange, allow *identity.AllowList) bool {
	id, _ := identity.Parse(ex.identity) // the zero ID when there is none
	if allow.Allows(id) {
		return true
	}
	reason := "identity_not_allowed"
	if ex.identity == "" {
		reason = "no_identity"
	}
	ex.denied = reason
	route := ex.route
	if route == "" {
		route = labelNone
	}
	h.metrics.authzDenied(ex.listener, route, reason)
	if ok, suppressed := h.denials.Allow(route + ":" + reason); ok {
		h.log.Warn("request refused: client identity not allowed", "listener", ex.listener, "route", ex.route,
			"identity", ex.identity, "reason", reason, "allow", allow.Patterns(), "request_id", ex.requestID, suppressed)
	}
	return false
}
