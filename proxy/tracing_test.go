package proxy_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
	"github.com/drawbridge-proxy/drawbridge/proxy"
)

// TestTracingSampledOut: with every new trace sampled out (sample_ratio 0),
// nothing is recorded, yet each request still has a trace. A request
// without traceparent starts one, and one whose traceparent says not
// sampled continues the client's; either way the upstream gets a
// traceparent flagged not sampled, the access log line names the trace and
// the server span, and no exemplar points to the trace.
func TestTracingSampledOut(t *testing.T) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0))))
	defer tp.Shutdown(t.Context())
	t.Run("client span per attempt", func(t *testing.T) { testTracingSampledOut(t, tp, false) })
	// telemetry's provider says a child of an unsampled span is unsampled:
	// no client span is started, and the upstream's parent is the server span.
	t.Run("no client span", func(t *testing.T) { testTracingSampledOut(t, followerProvider{tp}, true) })
}

// followerProvider says, as telemetry's provider does, that a child of an
// unsampled span is never sampled.
type followerProvider struct{ *sdktrace.TracerProvider }

func (followerProvider) UnsampledParentsHaveUnsampledChildren() bool { return true }

func testTracingSampledOut(t *testing.T, tp trace.TracerProvider, parentIsServer bool) {
	var mu sync.Mutex
	var got []string
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("Traceparent"))
		mu.Unlock()
		io.WriteString(w, "ok")
	}))
	defer backend.Close()
	rec := tracetest.NewSpanRecorder()
	if p, ok := tp.(followerProvider); ok {
		p.RegisterSpanProcessor(rec)
	} else {
		tp.(*sdktrace.TracerProvider).RegisterSpanProcessor(rec)
	}
	reg := prometheus.NewRegistry()
	g := startGatewayWith(t, oneRoute(hostOf(backend)), proxy.Deps{Registerer: reg, Tracing: tp})

	const clientTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	for _, tc := range []struct{ name, traceparent, path string }{
		{"new trace", "", "/new"},
		{"client's trace, not sampled", "00-" + clientTrace + "-00f067aa0ba902b7-00", "/continued"},
	} {
		req := newRequest(t, "GET", g.url+tc.path, nil)
		if tc.traceparent != "" {
			req.Header.Set("Traceparent", tc.traceparent)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	drawtest.WaitFor(t, "two access log lines", func() bool { return len(g.logs.accessLines(t)) >= 2 })

	traceparent := regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-00$`)
	mu.Lock()
	defer mu.Unlock()
	for i, line := range g.logs.accessLines(t) {
		m := traceparent.FindStringSubmatch(got[i])
		if m == nil {
			t.Fatalf("request %d: upstream got traceparent %q, want a valid one flagged not sampled", i+1, got[i])
		}
		if line["trace_id"] != m[1] {
			t.Errorf("request %d: access log trace_id %v, want the upstream's %s", i+1, line["trace_id"], m[1])
		}
		id, _ := line["span_id"].(string)
		switch {
		case len(id) != 16:
			t.Errorf("request %d: access log span_id %q, want the server span's", i+1, id)
		case parentIsServer && id != m[2]:
			t.Errorf("request %d: upstream's parent %s, want the server span %s (no client span)", i+1, m[2], id)
		case !parentIsServer && id == m[2]:
			t.Errorf("request %d: upstream's parent is the server span %s, want the attempt's client span", i+1, id)
		}
		if i == 1 && m[1] != clientTrace {
			t.Errorf("request 2: upstream trace %s, want the client's %s", m[1], clientTrace)
		}
	}
	if n := len(rec.Ended()); n != 0 {
		t.Errorf("%d spans recorded, want none", n)
	}
	if ex := exemplarTraceID(t, reg, "drawbridge_http_request_duration_seconds"); ex != "" {
		t.Errorf("duration exemplar trace_id %q, want none for an unsampled trace", ex)
	}
}

// blindProvider says, as telemetry's provider does, that its sampler reads
// no start attributes.
type blindProvider struct{ *sdktrace.TracerProvider }

func (blindProvider) SamplerIgnoresAttributes() bool { return true }

// TestTracingLateAttributes: a provider whose sampler ignores start
// attributes gets recorded spans with the same names, kinds and
// attributes as one that is handed them at Start.
func TestTracingLateAttributes(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer backend.Close()
	type span struct {
		Name  string
		Kind  string
		Attrs []string
	}
	record := func(blind bool) []span {
		rec := tracetest.NewSpanRecorder()
		sdk := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSampler(sdktrace.AlwaysSample()))
		defer sdk.Shutdown(t.Context())
		deps := proxy.Deps{Tracing: sdk}
		if blind {
			deps.Tracing = blindProvider{sdk}
		}
		g := startGatewayWith(t, oneRoute(hostOf(backend)), deps)
		resp, err := http.DefaultClient.Do(newRequest(t, "GET", g.url+"/late", nil))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		drawtest.WaitFor(t, "two ended spans", func() bool { return len(rec.Ended()) >= 2 })
		var out []span
		for _, s := range rec.Ended() {
			sp := span{Name: s.Name(), Kind: s.SpanKind().String()}
			for _, kv := range s.Attributes() {
				if !volatile[kv.Key] {
					sp.Attrs = append(sp.Attrs, string(kv.Key)+"="+kv.Value.String())
				}
			}
			sort.Strings(sp.Attrs)
			out = append(out, sp)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Kind < out[j].Kind })
		return out
	}
	want, got := record(false), record(true)
	if len(want) != 2 || len(want[0].Attrs) == 0 {
		t.Fatalf("spans handed their attributes at Start: got %+v, want a server and a client span with attributes", want)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("spans given their attributes after Start differ (-at start +after):\n%s", diff)
	}
}

// volatile are the attributes that differ between two gateways.
var volatile = map[attribute.Key]bool{"drawbridge.request_id": true}
