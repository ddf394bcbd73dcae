package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"syscall"
)

// Sentinel errors of the data plane.
var (
	// ErrNoTarget means every target of the upstream is unhealthy, ejected
	// or behind an open breaker: the request is answered at once.
	ErrNoTarget = errors.New("no available target")
	// ErrTryTimeout means one attempt exceeded retries.per_try_timeout.
	ErrTryTimeout = errors.New("attempt timed out")
)

// errClientGone marks a request the client abandoned; nothing is written
// back and it is not the upstream's fault.
var errClientGone = errors.New("client closed the request")

// statusClientClosed is nginx's 499, used only in logs and metrics.
const statusClientClosed = 499

// retryAfterSeconds is sent with 503s: long enough for a health check or a
// half-open breaker to let the target back.
const retryAfterSeconds = 5

// statusFor maps a proxying failure to the status the client gets. This is
// the one place where that decision is made.
func statusFor(ctx context.Context, err error) int {
	var maxBytes *http.MaxBytesError
	var netErr net.Error
	switch {
	case errors.Is(err, errClientGone), ctx.Err() != nil && errors.Is(err, context.Canceled):
		return statusClientClosed
	case errors.As(err, &maxBytes):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrNoTarget):
		return http.StatusServiceUnavailable
	case errors.Is(err, ErrTryTimeout), errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	case errors.As(err, &netErr) && netErr.Timeout():
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

// isConnectFailure reports an error that happened before any byte of the
// request could reach the upstream (refused, unreachable, DNS).
func isConnectFailure(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns) || errors.Is(err, syscall.ECONNREFUSED)
}

// errorWriter answers failed requests with a small JSON body that never
// carries internal detail; the detail goes to the log.
type errorWriter struct {
	log *slog.Logger
}

var statusText = map[int]string{
	http.StatusBadRequest:                  "bad request",
	http.StatusNotFound:                    "no route",
	http.StatusMethodNotAllowed:            "method not allowed",
	http.StatusMisdirectedRequest:          "misdirected request",
	http.StatusRequestEntityTooLarge:       "request body too large",
	http.StatusBadGateway:                  "bad gateway",
	http.StatusServiceUnavailable:          "service unavailable",
	http.StatusGatewayTimeout:              "gateway timeout",
	http.StatusRequestHeaderFieldsTooLarge: "request headers too large",
}

func (e *errorWriter) write(w http.ResponseWriter, status int, requestID string) {
	if status == statusClientClosed {
		return
	}
	msg, ok := statusText[status]
	if !ok {
		msg = http.StatusText(status)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if requestID != "" {
		h.Set(HeaderRequestID, requestID)
	}
	if status == http.StatusServiceUnavailable {
		h.Set("Retry-After", strconv.Itoa(retryAfterSeconds))
	}
	w.WriteHeader(status)
	// The request ID is validated to [A-Za-z0-9._:-], so it needs no escaping.
	_, _ = w.Write([]byte(`{"error":"` + msg + `","request_id":"` + requestID + `"}` + "\n"))
}

// proxyError is ReverseProxy's ErrorHandler.
func (e *errorWriter) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	ex := exchangeFrom(r.Context())
	status := statusFor(r.Context(), err)
	ex.mu.Lock()
	if ex.err == nil {
		ex.err = err
	}
	ex.mu.Unlock()
	e.write(w, status, ex.requestID)
}
