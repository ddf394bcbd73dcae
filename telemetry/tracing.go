package telemetry

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/drawbridge-proxy/drawbridge/telemetry/configerr"
)

// Tracing exporters and OTLP protocols, as the OpenTelemetry environment
// variables spell them.
const (
	ExporterNone     = "none"
	ExporterOTLP     = "otlp"
	ProtocolHTTP     = "http/protobuf"
	ProtocolGRPC     = "grpc"
	defaultService   = "drawbridge"
	defaultTimeout   = 10 * time.Second
	defaultQueueSize = 4096
)

// TracingConfig is the tracing section of the configuration file. Tracing is
// off unless exporter (or OTEL_TRACES_EXPORTER) says otlp. Every field left
// zero falls back to the standard OTEL_* environment variable, then to the
// OpenTelemetry default, so a deployment can be traced without editing the file.
type TracingConfig struct {
	// Exporter is "otlp" to send spans or "none". Zero means
	// OTEL_TRACES_EXPORTER, and "none" when that is unset too.
	Exporter string `yaml:"exporter"`
	// Protocol of the OTLP exporter: "http/protobuf" or "grpc". Zero means
	// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, then OTEL_EXPORTER_OTLP_PROTOCOL,
	// then http/protobuf.
	Protocol string `yaml:"protocol"`
	// Endpoint is the collector's base URL, e.g. "http://otel-collector:4318"
	// (http/protobuf; /v1/traces is appended) or "http://otel-collector:4317"
	// (grpc). An http:// URL means no TLS. Zero means
	// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT, and
	// when both are unset https://localhost:4318 (4317 for grpc).
	Endpoint string `yaml:"endpoint"`
	// SampleRatio is the fraction of new traces recorded, from 0 to 1. A
	// request whose traceparent says sampled is always recorded, one that
	// says not sampled never is (parent-based sampling). Zero (unset) means
	// 1; OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG override it.
	SampleRatio *float64 `yaml:"sample_ratio"`
	// ServiceName is the service.name of every span. Zero means
	// OTEL_SERVICE_NAME, then "drawbridge".
	ServiceName string `yaml:"service_name"`
	// Timeout bounds one export to the collector. Zero means 10s. Exports
	// run in the background: a slow or absent collector drops spans, it
	// never delays a request.
	Timeout time.Duration `yaml:"timeout"`
}

// Defaults fills the zero fields of c that do not depend on the environment.
func (c *TracingConfig) Defaults() {
	if c.Timeout == 0 {
		c.Timeout = defaultTimeout
	}
}

// Validate reports every problem in c, each naming its key.
func (c *TracingConfig) Validate() error {
	var errs configerr.List
	switch c.Exporter {
	case "", ExporterNone, ExporterOTLP:
	default:
		errs.Add("exporter", "%q is not one of none, otlp", c.Exporter)
	}
	switch c.Protocol {
	case "", ProtocolHTTP, ProtocolGRPC:
	default:
		errs.Add("protocol", "%q is not one of http/protobuf, grpc", c.Protocol)
	}
	if c.Endpoint != "" {
		if u, err := url.Parse(c.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs.Add("endpoint", "%q is not an http:// or https:// URL", c.Endpoint)
		}
	}
	if r := c.SampleRatio; r != nil && (*r < 0 || *r > 1) {
		errs.Add("sample_ratio", "%v is not between 0 and 1", *r)
	}
	if c.Timeout < 0 {
		errs.Add("timeout", "must not be negative")
	}
	return errs.Err()
}

// resolve fills what the file left open from the environment.
func (c *TracingConfig) resolve(getenv func(string) string) {
	if c.Exporter == "" {
		c.Exporter = strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")))
		if c.Exporter == "" || getenv("OTEL_SDK_DISABLED") == "true" {
			c.Exporter = ExporterNone
		}
	}
	if c.Protocol == "" {
		c.Protocol = firstNonEmpty(getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"), getenv("OTEL_EXPORTER_OTLP_PROTOCOL"), ProtocolHTTP)
	}
	if c.ServiceName == "" {
		c.ServiceName = firstNonEmpty(getenv("OTEL_SERVICE_NAME"), defaultService)
	}
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// Tracing is a running tracer provider, or none when tracing is off.
type Tracing struct {
	provider *sdktrace.TracerProvider
}

// NewTracing builds the tracer provider that cfg and the OTEL_* environment
// ask for. When tracing is off it returns a Tracing whose Provider is nil:
// instrumented code then skips its work entirely. No connection is made
// here; the exporter dials lazily and drops spans while the collector is away.
func NewTracing(cfg TracingConfig, build Build) (*Tracing, error) {
	return newTracing(cfg, build, os.Getenv)
}

func newTracing(cfg TracingConfig, build Build, getenv func(string) string) (*Tracing, error) {
	cfg.Defaults()
	cfg.resolve(getenv)
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	if cfg.Exporter == ExporterNone {
		return &Tracing{}, nil
	}
	exp, err := newExporter(cfg)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	ratio := 1.0
	if cfg.SampleRatio != nil {
		ratio = *cfg.SampleRatio
	}
	version := build.Version
	if version == "" {
		version = "dev"
	}
	res := resource.NewSchemaless(
		attribute.String("service.name", cfg.ServiceName),
		attribute.String("service.version", version),
	)
	if envRes, err := resource.New(context.Background(), resource.WithFromEnv()); err == nil {
		// OTEL_RESOURCE_ATTRIBUTES adds to (and may override) ours.
		if merged, err := resource.Merge(res, envRes); err == nil {
			res = merged
		}
	}
	tp := sdktrace.NewTracerProvider(
		// OTEL_TRACES_SAMPLER, when set, replaces this sampler (the SDK reads it).
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
		sdktrace.WithResource(res),
		sdktrace.WithBatcher(exp,
			sdktrace.WithMaxQueueSize(defaultQueueSize),
			sdktrace.WithExportTimeout(cfg.Timeout),
		),
	)
	return &Tracing{provider: tp}, nil
}

func newExporter(cfg TracingConfig) (sdktrace.SpanExporter, error) {
	// Exporter.Start does not dial (grpc connects lazily, http per export),
	// so a background context is right: nothing here outlives the call.
	ctx := context.Background()
	if cfg.Protocol == ProtocolGRPC {
		opts := []otlptracegrpc.Option{otlptracegrpc.WithTimeout(cfg.Timeout)}
		if cfg.Endpoint != "" {
			opts = append(opts, otlptracegrpc.WithEndpointURL(cfg.Endpoint))
		}
		return otlptracegrpc.New(ctx, opts...)
	}
	opts := []otlptracehttp.Option{otlptracehttp.WithTimeout(cfg.Timeout)}
	if cfg.Endpoint != "" {
		u, _ := url.Parse(cfg.Endpoint) // validated
		opts = append(opts, otlptracehttp.WithEndpoint(u.Host), otlptracehttp.WithURLPath(path.Join("/", u.Path, "v1/traces")))
		if u.Scheme == "http" {
			opts = append(opts, otlptracehttp.WithInsecure())
		}
	}
	return otlptracehttp.New(ctx, opts...)
}

// Provider is the tracer provider to hand to instrumented packages, or nil
// when tracing is off. It has the methods SamplerIgnoresAttributes and
// UnsampledParentsHaveUnsampledChildren (see there).
func (t *Tracing) Provider() trace.TracerProvider {
	if t.provider == nil {
		return nil
	}
	return blindProvider{t.provider}
}

// blindProvider is the SDK's tracer provider as NewTracing builds it.
type blindProvider struct{ *sdktrace.TracerProvider }

// SamplerIgnoresAttributes reports that no sampling decision of the
// provider reads a span's start attributes, and that no span processor
// looks at a span when it starts (the batcher's OnStart does nothing). The
// sampler is ParentBased(TraceIDRatioBased) or one OTEL_TRACES_SAMPLER
// names, and the SDK knows only samplers that decide from the trace ID and
// the parent. An instrumented package may then give a span its attributes
// after Start, and only when it records: most spans are sampled out.
func (blindProvider) SamplerIgnoresAttributes() bool { return true }

// UnsampledParentsHaveUnsampledChildren reports that a span started under
// an unsampled span of the same trace is never sampled: the parent-based
// samplers follow a local parent, TraceIDRatioBased decides the same for
// the same trace ID, always_off samples nothing, and under always_on no
// parent is unsampled. An instrumented package may then skip such child
// spans and propagate the parent's context in their place.
func (blindProvider) UnsampledParentsHaveUnsampledChildren() bool { return true }

// Shutdown flushes what is queued, within ctx, and stops the exporter.
// It is idempotent and a no-op when tracing is off.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t.provider == nil {
		return nil
	}
	return t.provider.Shutdown(ctx)
}

// OTelErrorHandler returns a handler for the OpenTelemetry SDK's internal
// errors (a collector that cannot be reached, mostly) that logs them to log
// at warn level, at most once per interval, counting what it held back.
// The SDK reports such errors only through its global handler: install it
// with otel.SetErrorHandler in main.
func OTelErrorHandler(log *slog.Logger, interval time.Duration) *ThrottledErrorHandler {
	return &ThrottledErrorHandler{log: log, interval: interval, now: time.Now}
}

// ThrottledErrorHandler is an otel.ErrorHandler that logs at most once per interval.
type ThrottledErrorHandler struct {
	log      *slog.Logger
	interval time.Duration
	now      func() time.Time

	mu         sync.Mutex // guards the following fields
	last       time.Time
	suppressed int
}

// Handle logs err unless another error was logged less than interval ago.
func (h *ThrottledErrorHandler) Handle(err error) {
	h.mu.Lock()
	now := h.now()
	if !h.last.IsZero() && now.Sub(h.last) < h.interval {
		h.suppressed++
		h.mu.Unlock()
		return
	}
	suppressed := h.suppressed
	h.last, h.suppressed = now, 0
	h.mu.Unlock()
	h.log.Warn("opentelemetry", "error", err.Error(), "suppressed_since_last", suppressed)
}
