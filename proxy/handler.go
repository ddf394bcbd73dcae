package proxy

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// noDeadline clears a connection deadline.
var noDeadline time.Time

// listenerHandler is the http.Handler of one listener. The routing table
// sits behind an atomic pointer so a config reload can swap it while
// requests are in flight.
type listenerHandler struct {
	name     string
	trusted  trustedProxies
	unknown  int
	routes   *router
	errs     *errorWriter
	access   *accessLog
	inflight *inflightGroup
	metrics  *metrics
	tracing  *tracing
	active   prometheus.Gauge // in-flight requests of this listener; nil without metrics
}

func (h *listenerHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	done := h.inflight.begin()
	defer done()
	ex := &exchange{start: time.Now(), listener: h.name}
	h.begin()
	r = h.tracing.startServer(r, ex)
	rec := &recorder{ResponseWriter: w}
	var body *meteredBody
	if r.Body != nil && r.Body != http.NoBody {
		body = &meteredBody{ReadCloser: r.Body}
		r.Body = body
	}
	defer func() { h.finish(r, rec, ex, body) }()

	ex.requestID = r.Header.Get(HeaderRequestID)
	if !validRequestID(ex.requestID) {
		ex.requestID = newRequestID()
	}
	ex.clientIP, ex.peerTrusted = h.trusted.clientIP(r.RemoteAddr, r.Header["X-Forwarded-For"])

	if status := h.screen(r, ex); status != 0 {
		if r.Close {
			rec.Header().Set("Connection", "close")
		}
		h.errs.write(rec, status, ex.requestID)
		return
	}
	rte, knownHost := h.routes.match(r, ex.path)
	if rte == nil {
		status := http.StatusNotFound
		if !knownHost {
			status = h.unknown
		}
		h.errs.write(rec, status, ex.requestID)
		return
	}
	ex.route, ex.upstream, ex.routePrefix = rte.name, rte.upstream.name, rte.prefix
	if r.ContentLength > rte.maxBody {
		h.errs.write(rec, http.StatusRequestEntityTooLarge, ex.requestID)
		return
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(rec, r.Body, rte.maxBody)
	}
	rte.allowUpgrade(r.Header)
	ex.rc = http.NewResponseController(w)
	rte.proxy.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), exchangeKey{}, ex)))
	if ex.upgraded {
		if fc, ok := r.Context().Value(framingKey{}).(*framingConn); ok {
			fc.stop()
		}
	}
}

// screen applies the checks every request passes before routing and
// returns a non-zero status to refuse it.
func (h *listenerHandler) screen(r *http.Request, ex *exchange) int {
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
