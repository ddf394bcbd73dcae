package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"syscall"

	"github.com/drawbridge-proxy/drawbridge/proxy/breaker"
	"github.com/drawbridge-proxy/drawbridge/proxy/retry"
)

// Sentinel errors of the data plane.
var (
	// ErrNoTarget means every target of the upstream is unhealthy, ejected
	// or behind an open breaker: the request is answered at once.
	ErrNoTarget = retry.ErrNoTarget
	// ErrTryTimeout means one attempt exceeded retries.per_try_timeout.
	ErrTryTimeout = errors.New("attempt timed out")
)

// errClientGone marks a request the client abandoned; nothing is written
// back and it is not the upstream's fault.
var errClientGone = retry.ErrClientGone

// statusClientClosed is nginx's 499, used only in logs and metrics.
const statusClientClosed = 499

// retryAfterSeconds is sent with 503s: long enough for a health check or a
// half-open breaker to let the target back.
const retryAfterSeconds = 5

// failure is what became of an attempt or a request, sorted once by
// classify; the tables below turn it into the client's status, the
// breaker's kind and the metric label, so the four views never disagree.
type failure int

const (
	failNone         failure = iota // no error
	failClientGone                  // the client left or canceled
	failClientBody                  // the client's body was malformed (bad chunk, short HTTP/2 body)
	failClientCut                   // the client's body ended early (connection closed mid-body)
	failClientSlow                  // the client's body did not arrive in time
	failBodyTooLarge                // the client's body went over the route's limit
	failNoTarget                    // no target could take the request
	failTimeout                     // dial, handshake, response head or per-try timeout
	failConnect                     // the connection could not be opened
	failTLS                         // the TLS handshake with the target failed
	failOther                       // the connection failed after it was opened
)

// failureInfo is one row of the classifier's table. Client-caused rows
// carry breaker.Canceled: they never count against a target (breaker,
// outlier detection, the failing status, retries).
type failureInfo struct {
	status int          // what the client gets
	kind   breaker.Kind // what breakers and outlier detection see
	label  string       // drawbridge_upstream_errors_total kind, span status
	reason string       // drawbridge_client_errors_total reason; "" when not the client's fault
}

var failures = [...]failureInfo{
	failNone:         {0, breaker.Response, "", ""},
	failClientGone:   {statusClientClosed, breaker.Canceled, "canceled", ""},
	failClientBody:   {http.StatusBadRequest, breaker.Canceled, "client", "body_malformed"},
	failClientCut:    {http.StatusBadRequest, breaker.Canceled, "client", "body_incomplete"},
	failClientSlow:   {http.StatusRequestTimeout, breaker.Canceled, "client", "body_timeout"},
	failBodyTooLarge: {http.StatusRequestEntityTooLarge, breaker.Canceled, "client", "body_too_large"},
	failNoTarget:     {http.StatusServiceUnavailable, breaker.Canceled, "no_target", ""},
	failTimeout:      {http.StatusGatewayTimeout, breaker.Timeout, "timeout", ""},
	failConnect:      {http.StatusBadGateway, breaker.Connect, "connect", ""},
	failTLS:          {http.StatusBadGateway, breaker.Reset, "tls", ""},
	failOther:        {http.StatusBadGateway, breaker.Reset, "other", ""},
}

// classify sorts a proxying error. ctx is the client's request (or
// relayed connection): once it has ended, whatever failed is the client's
// doing. This is the one place where that decision is made.
func classify(ctx context.Context, err error) failure {
	if err != nil && ctx.Err() != nil {
		return failClientGone
	}
	return classifyErr(err)
}

// classifyErr is classify for an error alone; the order of the cases is
// the precedence.
func classifyErr(err error) failure {
	var maxBytes *http.MaxBytesError
	var netErr net.Error
	switch {
	case err == nil:
		return failNone
	case errors.Is(err, errClientGone):
		return failClientGone
	case errors.As(err, &maxBytes):
		return failBodyTooLarge // also when the transport returns the body's error unwrapped
	case errors.Is(err, errClientBody):
		return clientBodyFailure(err)
	case errors.Is(err, ErrNoTarget):
		return failNoTarget
	// Timeouts before Canceled: a per-try timeout cancels the attempt's context.
	case errors.Is(err, ErrTryTimeout), errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return failTimeout
	case errors.Is(err, context.Canceled):
		return failClientGone
	case isConnectFailure(err):
		return failConnect
	case isTLSFailure(err):
		return failTLS
	}
	return failOther
}

// clientBodyFailure sorts an error reading the client's request body.
func clientBodyFailure(err error) failure {
	var netErr net.Error
	switch {
	case errors.As(err, &netErr) && netErr.Timeout():
		return failClientSlow
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, net.ErrClosed):
		return failClientCut
	}
	return failClientBody
}

func isTLSFailure(err error) bool {
	var certErr *tls.CertificateVerificationError
	var alert tls.AlertError
	var recordErr tls.RecordHeaderError
	return errors.As(err, &certErr) || errors.As(err, &alert) || errors.As(err, &recordErr)
}

// clientCaused reports a failure that is the client's doing.
func (f failure) clientCaused() bool { return f == failClientGone || failures[f].reason != "" }

// statusFor maps a proxying failure to the status the client gets.
func statusFor(ctx context.Context, err error) int {
	if f := classify(ctx, err); f != failNone {
		return failures[f].status
	}
	return http.StatusBadGateway
}

// errClientBody marks an attempt that failed because reading the client's
// request body failed: the target did nothing wrong.
var errClientBody = errors.New("client request body failed")

// blameClientBody wraps err with errClientBody (and the body's own error)
// when reading the request body failed during the attempt.
func blameClientBody(req *http.Request, err error) error {
	b, ok := req.Body.(*retry.Body)
	if !ok || err == nil {
		return err
	}
	bodyErr := b.Failure()
	if bodyErr == nil {
		return err
	}
	if errors.Is(err, bodyErr) {
		return fmt.Errorf("%w: %w", errClientBody, err)
	}
	return fmt.Errorf("%w: %w (%w)", errClientBody, bodyErr, err)
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
	log     *slog.Logger
	metrics *metrics // nil: no metrics
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
	f := classify(r.Context(), err)
	status := failures[f].status
	if f == failNone {
		status = http.StatusBadGateway
	}
	ex.mu.Lock()
	if ex.err == nil {
		ex.err = err
	}
	ex.mu.Unlock()
	if reason := failures[f].reason; reason != "" {
		e.clientError(w, r, ex, reason)
	}
	e.write(w, status, ex.requestID)
}

// clientError counts and logs a request refused for the client's own
// body. The framing of what follows on an HTTP/1 connection is in doubt,
// so the connection is closed after the answer; an HTTP/2 stream is reset
// by itself and the connection stays.
func (e *errorWriter) clientError(w http.ResponseWriter, r *http.Request, ex *exchange, reason string) {
	e.metrics.clientError(ex.listener, ex.route, reason)
	e.log.LogAttrs(r.Context(), slog.LevelInfo, "client error",
		slog.String("listener", ex.listener), slog.String("route", ex.route),
		slog.String("reason", reason), slog.String("request_id", ex.requestID))
	if r.ProtoMajor == 1 {
		w.Header().Set("Connection", "close")
	}
}
