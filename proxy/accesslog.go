package proxy

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net/http"
	"time"
)

// accessLog writes one JSON line per request. Header values are logged only
// when listed in access_log.headers, and credentials never. It also hands
// each finished request to the Observer, whether the line is written or not.
type accessLog struct {
	log          *slog.Logger
	includeQuery bool
	headers      []string
	observer     Observer // nil: none
}

// Observer sees every finished HTTP request once, at the point where its
// access log line is written, on every HTTP engine. It must be fast and
// safe for concurrent use: it runs on the request's goroutine.
type Observer interface {
	ObserveRequest(RequestRecord)
}

// RequestRecord is what an Observer is told about a finished request.
type RequestRecord struct {
	Listener string
	Route    string // "" when no route matched
	Upstream string // "" when no upstream was involved
	Target   string // the last attempt's target; "" without one
	Status   int    // as the client got it (499 when it left)
	Duration time.Duration
}

func newAccessLog(cfg AccessLogConfig, log *slog.Logger, obs Observer) *accessLog {
	if cfg.Disabled || log == nil {
		return &accessLog{observer: obs}
	}
	a := &accessLog{log: log, includeQuery: cfg.IncludeQuery, observer: obs}
	for _, h := range cfg.Headers {
		a.headers = append(a.headers, http.CanonicalHeaderKey(h))
	}
	return a
}

func (a *accessLog) write(r *http.Request, rec *recorder, ex *exchange, body *meteredBody) {
	if a.log == nil && a.observer == nil {
		return
	}
	attempts, target, upStatus, upTime, err := ex.snapshot()
	status := finalStatus(r, rec, err)
	if a.observer != nil {
		a.observer.ObserveRequest(RequestRecord{Listener: ex.listener, Route: ex.route, Upstream: ex.upstream,
			Target: target, Status: status, Duration: time.Since(ex.start)})
	}
	// The line's level decides before anything is built: a gateway
	// logging at warn writes none and should pay for none.
	ctx := r.Context()
	if a.log == nil || !a.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	path := ex.path
	if path == "" {
		path = r.URL.Path
	}
	if a.includeQuery && r.URL.RawQuery != "" {
		path += "?" + r.URL.RawQuery
	}
	var bytesIn int64
	if body != nil {
		bytesIn = body.n.Load()
	}
	attrs := make([]slog.Attr, 0, 24)
	attrs = append(attrs,
		slog.String("request_id", ex.requestID),
		slog.String("listener", ex.listener),
		slog.String("route", ex.route),
		slog.String("method", r.Method),
		slog.String("host", r.Host),
		slog.String("path", path),
		slog.String("proto", r.Proto),
		slog.Int("status", status),
		slog.Int64("bytes_in", bytesIn),
		slog.Int64("bytes_out", rec.bytes),
		slog.Float64("duration_ms", ms(time.Since(ex.start))),
		slog.String("client_ip", ex.clientIP),
	)
	if r.TLS != nil {
		attrs = append(attrs, slog.String("tls_version", tls.VersionName(r.TLS.Version)))
	}
	if ex.identity != "" {
		attrs = append(attrs, slog.String("identity", ex.identity))
	}
	if ex.denied != "" {
		attrs = append(attrs, slog.String("authz_denied", ex.denied))
	}
	if traceID, spanID := ex.traceIDs(); traceID != "" {
		attrs = append(attrs, slog.String("trace_id", traceID), slog.String("span_id", spanID))
	}
	if ex.upstream != "" {
		attrs = append(attrs,
			slog.String("upstream", ex.upstream),
			slog.String("upstream_target", target),
			slog.Int("upstream_status", upStatus),
			slog.Float64("upstream_duration_ms", ms(upTime)),
			slog.Int("attempts", attempts),
		)
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	if ex.static != "" {
		attrs = append(attrs, slog.String("static", ex.static))
	}
	if ex.limited != "" {
		attrs = append(attrs, slog.String("limited", ex.limited))
	}
	if ex.encoding != "" {
		attrs = append(attrs, slog.String("encoding", ex.encoding))
	}
	if ex.upgraded {
		attrs = append(attrs, slog.Bool("upgraded", true))
	}
	for _, h := range a.headers {
		if v := r.Header.Get(h); v != "" {
			attrs = append(attrs, slog.String("header."+h, v))
		}
	}
	a.log.LogAttrs(context.WithoutCancel(ctx), slog.LevelInfo, "access", attrs...)
}

// finalStatus is the status the client got, or would have got: a request
// that ended before anything was written counts by its error (499 when the
// client left).
func finalStatus(r *http.Request, rec *recorder, err error) int {
	if rec.status != 0 {
		return rec.status
	}
	if err == nil && r.Context().Err() != nil {
		return statusClientClosed
	}
	return statusFor(r.Context(), err)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
