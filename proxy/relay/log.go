package relay

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// connRecord is what one connection's access log line says.
type connRecord struct {
	start    time.Time
	client   string
	sni      string
	identity string
	tlsVer   uint16
	route    string
	upstream string
	target   string
	reason   string
	err      error
	up, down int64
}

func (l *Listener) logConn(rec *connRecord) {
	if l.deps.Access == nil {
		return
	}
	host, _, _ := net.SplitHostPort(rec.client)
	attrs := []slog.Attr{
		slog.String("listener", l.cfg.Name),
		slog.String("protocol", l.cfg.Protocol),
		slog.String("client_ip", host),
		slog.String("route", rec.route),
		slog.String("upstream", rec.upstream),
		slog.String("upstream_target", rec.target),
		slog.Int64("bytes_in", rec.up),
		slog.Int64("bytes_out", rec.down),
		slog.Float64("duration_ms", ms(time.Since(rec.start))),
		slog.String("close_reason", rec.reason),
	}
	if rec.sni != "" {
		attrs = append(attrs, slog.String("sni", rec.sni))
	}
	if rec.tlsVer != 0 {
		attrs = append(attrs, slog.String("tls_version", tls.VersionName(rec.tlsVer)))
	}
	if rec.identity != "" {
		attrs = append(attrs, slog.String("identity", rec.identity))
	}
	if rec.err != nil {
		attrs = append(attrs, slog.String("error", rec.err.Error()))
	}
	l.deps.Access.LogAttrs(context.Background(), slog.LevelInfo, "connection", attrs...)
}

// ms is a duration in milliseconds with microsecond precision, as the
// gateway's HTTP access log writes durations.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// span makes one server span per relayed connection, from accept to
// close. A TCP stream carries no trace context, so each connection starts
// its own trace (sampled by the provider's sampler). The returned func
// ends the span from what rec says once the connection is over.
func (l *Listener) span(rec *connRecord) (end func()) {
	if l.deps.Tracer == nil {
		return func() {}
	}
	_, span := l.deps.Tracer.Start(context.Background(), l.cfg.Protocol+" "+l.cfg.Name, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithTimestamp(rec.start),
		trace.WithAttributes(
			attribute.String("drawbridge.listener", l.cfg.Name),
			attribute.String("network.transport", "tcp"),
			attribute.String("network.protocol.name", l.cfg.Protocol),
		))
	return func() {
		if !span.IsRecording() {
			span.End()
			return
		}
		host, _, _ := net.SplitHostPort(rec.client)
		attrs := []attribute.KeyValue{
			attribute.String("client.address", host),
			attribute.String("drawbridge.route", rec.route),
			attribute.String("drawbridge.upstream", rec.upstream),
			attribute.String("server.address", rec.target),
			attribute.Int64("drawbridge.bytes_in", rec.up),
			attribute.Int64("drawbridge.bytes_out", rec.down),
			attribute.String("drawbridge.close_reason", rec.reason),
		}
		if rec.sni != "" {
			attrs = append(attrs, attribute.String("tls.server_name", rec.sni))
		}
		if rec.identity != "" {
			attrs = append(attrs, attribute.String("drawbridge.client_identity", rec.identity))
		}
		span.SetAttributes(attrs...)
		if rec.err != nil {
			span.SetStatus(codes.Error, rec.reason)
		}
		span.End()
	}
}
