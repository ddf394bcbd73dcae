package telemetry

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestTracingConfigResolve(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	tests := []struct {
		name string
		cfg  TracingConfig
		env  func(string) string
		want TracingConfig
	}{
		{"off by default", TracingConfig{}, env(),
			TracingConfig{Exporter: "none", Protocol: "http/protobuf", ServiceName: "drawbridge"}},
		{"environment turns it on", TracingConfig{},
			env("OTEL_TRACES_EXPORTER", "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "OTEL_SERVICE_NAME", "edge"),
			TracingConfig{Exporter: "otlp", Protocol: "grpc", ServiceName: "edge"}},
		{"traces protocol wins over the general one", TracingConfig{Exporter: "otlp"},
			env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf", "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
			TracingConfig{Exporter: "otlp", Protocol: "http/protobuf", ServiceName: "drawbridge"}},
		{"the file wins over the environment", TracingConfig{Exporter: "none", Protocol: "grpc"},
			env("OTEL_TRACES_EXPORTER", "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
			TracingConfig{Exporter: "none", Protocol: "grpc", ServiceName: "drawbridge"}},
		{"OTEL_SDK_DISABLED", TracingConfig{}, env("OTEL_TRACES_EXPORTER", "otlp", "OTEL_SDK_DISABLED", "true"),
			TracingConfig{Exporter: "none", Protocol: "http/protobuf", ServiceName: "drawbridge"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.cfg
			got.resolve(tc.env)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("resolve (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTracingConfigValidate(t *testing.T) {
	bad := 1.5
	c := TracingConfig{Exporter: "jaeger", Protocol: "thrift", Endpoint: "collector:4318", SampleRatio: &bad}
	err := c.Validate()
	if err == nil {
		t.Fatal("got nil, want problems")
	}
	for _, key := range []string{"exporter: ", "protocol: ", "endpoint: ", "sample_ratio: "} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("got %q, want a problem for %s", err, key)
		}
	}
	off, err := newTracing(TracingConfig{}, Build{}, func(string) string { return "" })
	if err != nil || off.Provider() != nil {
		t.Fatalf("tracing off: got provider %v, error %v; want nil, nil", off.Provider(), err)
	}
}

// TestTracingProviderIgnoresAttributes: the provider tells instrumentation
// that its sampler reads no start attributes.
func TestTracingProviderIgnoresAttributes(t *testing.T) {
	zero := 0.0
	tr, err := newTracing(TracingConfig{Exporter: ExporterOTLP, Endpoint: "http://127.0.0.1:4318", SampleRatio: &zero},
		Build{}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Shutdown(t.Context())
	blind, ok := tr.Provider().(interface{ SamplerIgnoresAttributes() bool })
	if !ok || !blind.SamplerIgnoresAttributes() {
		t.Errorf("provider %T: SamplerIgnoresAttributes missing or false, want true", tr.Provider())
	}
}
