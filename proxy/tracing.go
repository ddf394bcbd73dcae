package proxy

import (
	"context"
	"net/http"
	"net/textproto"
	"sync"
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
	// The span kinds' options, made once: WithSpanKind allocates a
	// closure per call.
	server, client trace.SpanStartOption
	starts         sync.Pool // *spanStart
	// lateAttrs: the provider says its sampler never reads start
	// attributes (attributeBlind), so a span gets them after Start, and
	// only when it records.
	lateAttrs bool
	// skipUnsampledChildren: the provider says a child of an unsampled
	// span is never sampled (parentFollower), so an attempt under an
	// unsampled server span starts no client span and the upstream gets
	// the server span's context.
	skipUnsampledChildren bool
}

// parentFollower is implemented by a TracerProvider under which a span
// whose parent is an unsampled span of the same trace is never sampled
// (telemetry's provider).
type parentFollower interface {
	UnsampledParentsHaveUnsampledChildren() bool
}

// attributeBlind is implemented by a TracerProvider whose sampling
// decisions never read a span's start attributes and whose span
// processors do not look at a span as it starts (telemetry's provider).
type attributeBlind interface {
	SamplerIgnoresAttributes() bool
}

func newTracing(tp trace.TracerProvider) *tracing {
	if tp == nil {
		return nil
	}
	blind, ok := tp.(attributeBlind)
	follower, follows := tp.(parentFollower)
	return &tracing{
		tracer:    tp.Tracer(instrumentationName),
		prop:      propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
		server:    trace.WithSpanKind(trace.SpanKindServer),
		client:    trace.WithSpanKind(trace.SpanKindClient),
		lateAttrs: ok && blind.SamplerIgnoresAttributes(),

		skipUnsampledChildren: follows && follower.UnsampledParentsHaveUnsampledChildren(),
	}
}

// spanStart holds the options and attributes of one span's start, so
// that starting a span does not allocate them: most spans are sampled
// out, and all a tracer keeps of its options is a copy of the attributes
// (trace.NewSpanStartConfig appends them to a slice of its own, as the
// SDK's SetAttributes does).
type spanStart struct {
	opts  [3]trace.SpanStartOption
	attrs [5]attribute.KeyValue
	n     int
}

func (s *spanStart) add(kv attribute.KeyValue) {
	s.attrs[s.n] = kv
	s.n++
}

func (t *tracing) newStart() *spanStart {
	if s, ok := t.starts.Get().(*spanStart); ok {
		return s
	}
	return new(spanStart)
}

// start starts a span of kind under ctx with s's attributes, at the time
// at (zero: now), and puts s back, cleared. The span's attributes are the
// same either way: set from the start config or right after Start, the
// SDK's recording span adds them with the same SetAttributes.
func (t *tracing) start(ctx context.Context, name string, s *spanStart, kind trace.SpanStartOption, at time.Time) (context.Context, trace.Span) {
	opts := append(s.opts[:0], kind)
	if !at.IsZero() {
		opts = append(opts, trace.WithTimestamp(at))
	}
	if !t.lateAttrs {
		opts = append(opts, trace.WithAttributes(s.attrs[:s.n]...))
	}
	ctx, span := t.tracer.Start(ctx, name, opts...)
	if t.lateAttrs && span.IsRecording() {
		span.SetAttributes(s.attrs[:s.n]...)
	}
	*s = spanStart{} // keeps no request's strings alive in the pool
	t.starts.Put(s)
	return ctx, span
}

// startServer continues the client's trace (or starts one) with a server
// span, and returns r carrying it. The span is named and finished by endServer.
func (t *tracing) startServer(r *http.Request, ex *exchange) *http.Request {
	if t == nil {
		return r
	}
	ctx := t.prop.Extract(r.Context(), headerCarrier(r.Header))
	s := t.newStart()
	s.add(attribute.String("http.request.method", methodLabel(r.Method)))
	s.add(attribute.String("url.scheme", schemeOf(r)))
	s.add(attribute.String("server.address", hostOnly(r.Host)))
	s.add(attribute.String("network.protocol.version", protoVersion(r)))
	s.add(attribute.String("drawbridge.listener", ex.listener))
	ctx, span := t.start(ctx, r.Method, s, t.server, ex.start)
	ex.span = span
	if sc := span.SpanContext(); sc.IsValid() && sc.IsSampled() {
		// A sampled trace's ID goes into exemplars; the access line
		// renders the IDs itself (traceFields).
		ex.traceID, ex.sampled = sc.TraceID().String(), true
	}
	return r.WithContext(ctx)
}

// traceFields adds the server span's trace and span IDs (hex) to an access
// line; none without a valid span. They are rendered straight into the line.
func (ex *exchange) traceFields(f lineFields) {
	if ex.span == nil {
		return
	}
	if sc := ex.span.SpanContext(); sc.IsValid() {
		f.TraceContext(sc.TraceID(), sc.SpanID())
	}
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

// headerCarrier is propagation.HeaderCarrier without its allocations: the
// fields the W3C propagators use are looked up by their canonical names,
// where textproto canonicalises "traceparent" into a new string each time.
type headerCarrier http.Header

func (c headerCarrier) Get(key string) string {
	if vv := c[canonicalField(key)]; len(vv) > 0 {
		return vv[0]
	}
	return ""
}

func (c headerCarrier) Values(key string) []string { return c[canonicalField(key)] }

func (c headerCarrier) Set(key, value string) { c[canonicalField(key)] = []string{value} }

func (c headerCarrier) Keys() []string { return propagation.HeaderCarrier(c).Keys() }

// injectCarrier is a headerCarrier whose Set takes its value slice from
// the exchange's storage.
type injectCarrier struct {
	h  http.Header
	ex *exchange
}

func (c *injectCarrier) Get(key string) string      { return headerCarrier(c.h).Get(key) }
func (c *injectCarrier) Values(key string) []string { return headerCarrier(c.h).Values(key) }
func (c *injectCarrier) Keys() []string             { return headerCarrier(c.h).Keys() }
func (c *injectCarrier) Set(key, value string)      { c.h[canonicalField(key)] = c.ex.value(value) }

// canonicalField is textproto.CanonicalMIMEHeaderKey(key), without an
// allocation for the propagators' fields.
func canonicalField(key string) string {
	switch key {
	case "traceparent":
		return "Traceparent"
	case "tracestate":
		return "Tracestate"
	case "baggage":
		return "Baggage"
	}
	return textproto.CanonicalMIMEHeaderKey(key)
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
