package proxy

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// instrumentationName names our tracer, as OpenTelemetry asks.
const instrumentationName = "github.com/drawbridge-proxy/drawbridge/proxy"

// tracing makes a server span per request and a client span per upstream
// attempt, and carries W3C trace context and baggage across. A nil
// *tracing (Deps.Tracing == nil) does nothing, and traceparent then passes
// through to the upstream untouched, as any other header.
type tracing struct {
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
}

func newTracing(tp trace.TracerProvider) *tracing {
	if tp == nil {
		return nil
	}
	return &tracing{
		tracer: tp.Tracer(instrumentationName),
		prop:   propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
	}
}

// startServer continues the client's trace (or starts one) with a server
// span, and returns r carrying it. The span is named and finished by endServer.
func (t *tracing) startServer(r *http.Request, ex *exchange) *http.Request {
	if t == nil {
		return r
	}
	ctx := t.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, span := t.tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithTimestamp(ex.start),
		trace.WithAttributes(
			attribute.String("http.request.method", methodLabel(r.Method)),
			attribute.String("url.scheme", schemeOf(r)),
			attribute.String("server.address", hostOnly(r.Host)),
			attribute.String("network.protocol.version", protoVersion(r)),
			attribute.String("drawbridge.listener", ex.listener),
		))
	ex.span = span
	if sc := span.SpanContext(); sc.IsValid() {
		ex.traceID, ex.spanID, ex.sampled = sc.TraceID().String(), sc.SpanID().String(), sc.IsSampled()
	}
	return r.WithContext(ctx)
}

// endServer completes the server span with what the request came to.
func (t *tracing) endServer(r *http.Request, ex *exchange, status int) {
	if t == nil || ex.span == nil {
		return
	}
	span := ex.span
	if span.IsRecording() {
		// One SetAttributes call: each call grows the span's attribute slice.
		attrs := make([]attribute.KeyValue, 0, 8)
		attrs = append(attrs,
			attribute.String("url.path", ex.path),
			attribute.Int("http.response.status_code", status),
			attribute.String("client.address", ex.clientIP),
			attribute.String("drawbridge.request_id", ex.requestID),
		)
		if ex.route != "" {
			span.SetName(r.Method + " " + ex.routePrefix)
			attrs = append(attrs,
				attribute.String("http.route", ex.routePrefix),
				attribute.String("drawbridge.route", ex.route),
				attribute.String("drawbridge.upstream", ex.upstream),
			)
		}
		if ex.identity != "" {
			attrs = append(attrs, attribute.String("drawbridge.client_identity", ex.identity))
		}
		span.SetAttributes(attrs...)
		if status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
	}
	span.End()
}

// attemptObs follows one upstream attempt: its client span and metrics.
// A nil *attemptObs does nothing.
type attemptObs struct {
	m        *metrics
	span     trace.Span
	upstream string
	target   string
	n        int
	traceID  string
	body     cancelOnClose // the response body's wrapper, which ends the span
}

// startAttempt opens the client span of attempt n to target under ctx and
// returns the context to send the attempt with. Call inject on the
// outgoing request, then done when the response head (or an error) is in,
// and end when the response body is closed.
func (u *upstream) startAttempt(ctx context.Context, req *http.Request, target string, n int, ex *exchange) (context.Context, *attemptObs) {
	if u.tracing == nil && u.metrics == nil {
		return ctx, nil
	}
	o := &attemptObs{m: u.metrics, upstream: u.name, target: target, n: n}
	if ex.sampled {
		o.traceID = ex.traceID
	}
	if u.tracing != nil {
		host, port, _ := net.SplitHostPort(target)
		attrs := []attribute.KeyValue{
			attribute.String("http.request.method", methodLabel(req.Method)),
			attribute.String("server.address", host),
			attribute.String("drawbridge.upstream", u.name),
		}
		if p, err := strconv.Atoi(port); err == nil {
			attrs = append(attrs, attribute.Int("server.port", p))
		}
		if n > 1 {
			attrs = append(attrs, attribute.Int("http.request.resend_count", n-1))
		}
		ctx, o.span = u.tracing.tracer.Start(ctx, req.Method, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	}
	if u.metrics != nil && u.scheme == "https" {
		m, name := u.metrics, u.name
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
			TLSHandshakeDone: func(cs tls.ConnectionState, err error) { m.tlsHandshake(name, cs, err) },
		})
	}
	return ctx, o
}

// inject writes the attempt's trace context into out's headers. The header
// map is copied first: it is shared by every attempt of the request.
func (u *upstream) inject(o *attemptObs, out *http.Request) {
	if o == nil || o.span == nil {
		return
	}
	out.Header = out.Header.Clone()
	u.tracing.prop.Inject(out.Context(), propagation.HeaderCarrier(out.Header))
}

// done records the attempt's outcome; on an error the span ends here.
func (o *attemptObs) done(status int, took time.Duration, err error) {
	if o == nil {
		return
	}
	o.m.attempt(o.upstream, o.target, status, took, err, o.traceID)
	if o.span == nil {
		return
	}
	switch {
	case err != nil:
		o.span.RecordError(err)
		o.span.SetStatus(codes.Error, errorKind(err))
		o.span.End()
	default:
		o.span.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= 400 {
			o.span.SetStatus(codes.Error, http.StatusText(status))
		}
	}
}

// end closes the span of an attempt that got a response, when its body is closed.
func (o *attemptObs) end() {
	if o != nil && o.span != nil {
		o.span.End()
	}
}

func schemeOf(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

func protoVersion(r *http.Request) string {
	switch {
	case r.ProtoMajor == 2:
		return "2"
	case r.ProtoMajor == 3:
		return "3"
	case r.ProtoMinor == 0:
		return "1.0"
	}
	return "1.1"
}

// connSpan makes one server span per relayed connection, from accept to
// close. A TCP stream carries no trace context, so each connection starts
// its own trace (sampled by the provider's sampler). The returned func
// ends the span from what rec says once the connection is over.
func (t *tracing) connSpan(l ListenerConfig, rec *connRecord) (end func()) {
	if t == nil {
		return func() {}
	}
	_, span := t.tracer.Start(context.Background(), l.Protocol+" "+l.Name, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithTimestamp(rec.start),
		trace.WithAttributes(
			attribute.String("drawbridge.listener", l.Name),
			attribute.String("network.transport", "tcp"),
			attribute.String("network.protocol.name", l.Protocol),
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
