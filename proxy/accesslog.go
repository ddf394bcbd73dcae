package proxy

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net/http"
	"time"

	"github.com/drawbridge-proxy/drawbridge/telemetry"
	"go.opentelemetry.io/otel/trace"
)

// accessLog writes one JSON line per request. Header values are logged only
// when listed in access_log.headers, and credentials never. It also hands
// each finished request to the Observer, whether the line is written or not.
type accessLog struct {
	log          *slog.Logger
	lines        *telemetry.JSONLines // log's own JSON output; nil: through slog
	includeQuery bool
	headers      []string // canonical names
	headerKeys   []string // "header." + each name, made once
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
	a := &accessLog{log: log, lines: telemetry.LinesOf(log), includeQuery: cfg.IncludeQuery, observer: obs}
	for _, h := range cfg.Headers {
		h = http.CanonicalHeaderKey(h)
		a.headers = append(a.headers, h)
		a.headerKeys = append(a.headerKeys, "header."+h)
	}
	return a
}

// lineFields is where an access line's fields go: telemetry's direct JSON
// line (the gateway's own JSON log: nothing allocated) or slog attributes
// (any other handler).
type lineFields interface {
	String(key, v string)
	Int(key string, v int64)
	Float(key string, v float64)
	Bool(key string, v bool)
	TraceContext(traceID trace.TraceID, spanID trace.SpanID)
}

func (a *accessLog) write(r *http.Request, rec *recorder, ex *exchange, body *meteredBody) {
	if a.log == nil && a.observer == nil {
		return
	}
	attempts, target, upStatus, upTime, err := ex.snapshot()
	status := finalStatus(r, rec, err)
	now := time.Now()
	if a.observer != nil {
		a.observer.ObserveRequest(RequestRecord{Listener: ex.listener, Route: ex.route, Upstream: ex.upstream,
			Target: target, Status: status, Duration: now.Sub(ex.start)})
	}
	// The line's level decides before anything is built: a gateway
	// logging at warn writes none and should pay for none.
	ctx := r.Context()
	if a.log == nil || !a.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	if a.lines != nil {
		l := a.lines.Start(now, slog.LevelInfo, "access")
		a.fields(l, r, rec, ex, body, now, status, attempts, target, upStatus, upTime, err)
		l.Write()
		return
	}
	attrs := &slogAttrs{list: make([]slog.Attr, 0, 24)}
	a.fields(attrs, r, rec, ex, body, now, status, attempts, target, upStatus, upTime, err)
	a.log.LogAttrs(context.WithoutCancel(ctx), slog.LevelInfo, "access", attrs.list...)
}

// fields are the access line's, in order, the same whichever way it is written.
func (a *accessLog) fields(f lineFields, r *http.Request, rec *recorder, ex *exchange, body *meteredBody, now time.Time,
	status, attempts int, target string, upStatus int, upTime time.Duration, err error) {
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
	f.String("request_id", ex.requestID)
	f.String("listener", ex.listener)
	f.String("route", ex.route)
	f.String("method", r.Method)
	f.String("host", r.Host)
	f.String("path", path)
	f.String("proto", r.Proto)
	f.Int("status", int64(status))
	f.Int("bytes_in", bytesIn)
	f.Int("bytes_out", rec.bytes)
	f.Float("duration_ms", ms(now.Sub(ex.start)))
	f.String("client_ip", ex.clientIP)
	if r.TLS != nil {
		f.String("tls_version", tls.VersionName(r.TLS.Version))
	}
	if ex.identity != "" {
		f.String("identity", ex.identity)
	}
	if ex.denied != "" {
		f.String("authz_denied", ex.denied)
	}
	ex.traceFields(f)
	if ex.upstream != "" {
		f.String("upstream", ex.upstream)
		f.String("upstream_target", target)
		f.Int("upstream_status", int64(upStatus))
		f.Float("upstream_duration_ms", ms(upTime))
		f.Int("attempts", int64(attempts))
	}
	if err != nil {
		f.String("error", err.Error())
	}
	if ex.static != "" {
		f.String("static", ex.static)
	}
	if ex.limited != "" {
		f.String("limited", ex.limited)
	}
	if ex.encoding != "" {
		f.String("encoding", ex.encoding)
	}
	if ex.upgraded {
		f.Bool("upgraded", true)
	}
	for i, h := range a.headers {
		if v := r.Header.Get(h); v != "" {
			f.String(a.headerKeys[i], v)
		}
	}
}

// slogAttrs collects an access line's fields for a slog handler.
type slogAttrs struct{ list []slog.Attr }

func (s *slogAttrs) String(key, v string)        { s.list = append(s.list, slog.String(key, v)) }
func (s *slogAttrs) Int(key string, v int64)     { s.list = append(s.list, slog.Int64(key, v)) }
func (s *slogAttrs) Float(key string, v float64) { s.list = append(s.list, slog.Float64(key, v)) }
func (s *slogAttrs) Bool(key string, v bool)     { s.list = append(s.list, slog.Bool(key, v)) }
func (s *slogAttrs) TraceContext(traceID trace.TraceID, spanID trace.SpanID) {
	s.list = append(s.list, slog.String("trace_id", traceID.String()), slog.String("span_id", spanID.String()))
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
