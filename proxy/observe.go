package proxy

import (
	"net/http"
	"time"
)

// begin counts a request in flight in the listener's gauge.
func (h *listenerHandler) begin() {
	if h.active != nil {
		h.active.Inc()
	}
}

// finish observes a request that is over: metrics, the server span, then
// the access log line, all from the same status and duration.
func (h *listenerHandler) finish(access *accessLog, r *http.Request, rec *recorder, ex *exchange, body *meteredBody) {
	if h.active != nil {
		h.active.Dec()
	}
	if h.metrics != nil || h.tracing != nil {
		_, _, _, _, err := ex.snapshot()
		status := finalStatus(r, rec, err)
		var in int64
		if body != nil {
			in = body.n.Load()
		}
		traceID := ""
		if ex.sampled {
			traceID = ex.traceID
		}
		h.metrics.request(ex, r.Method, status, time.Since(ex.start), in, rec.bytes, traceID)
		h.tracing.endServer(r, ex, status)
	}
	access.write(r, rec, ex, body)
}
