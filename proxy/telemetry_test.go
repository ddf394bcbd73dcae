package proxy_test

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
	"github.com/drawbridge-proxy/drawbridge/proxy"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// hostRoutes is listener "edge" serving host example.test only: /api goes
// to upstream "app", /dead to an upstream nothing listens on.
func hostRoutes(t *testing.T, app string) proxy.Config {
	return proxy.Config{
		Listeners: map[string]proxy.ListenerConfig{"edge": {Routes: []proxy.RouteConfig{
			{Name: "api", Match: proxy.MatchConfig{Hosts: []string{"example.test"}, PathPrefix: "/api"}, Upstream: "app"},
			{Name: "dead", Match: proxy.MatchConfig{Hosts: []string{"example.test"}, PathPrefix: "/dead"}, Upstream: "dead"},
		}}},
		Upstreams: map[string]proxy.UpstreamConfig{
			"app":  {Targets: []string{app}},
			"dead": {Targets: []string{drawtest.FreeAddr(t)}, Retries: proxy.RetryConfig{Attempts: 2}},
		},
		ShutdownGrace: 5 * time.Second,
	}
}

func send(t *testing.T, client *http.Client, method, url, host string) int {
	t.Helper()
	var body io.Reader
	if method == "POST" {
		body = strings.NewReader("hello")
	}
	req := newRequest(t, method, url, body)
	req.Host = host
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// families lists "name type" of every family gathered, sorted.
func families(t *testing.T, g prometheus.Gatherer) []string {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		labels := map[string]bool{}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = true
			}
		}
		names := make([]string, 0, len(labels))
		for l := range labels {
			names = append(names, l)
		}
		sort.Strings(names)
		out = append(out, fmt.Sprintf("%s %s {%s}", mf.GetName(), strings.ToLower(mf.GetType().String()), strings.Join(names, ",")))
	}
	sort.Strings(out)
	return out
}

func TestMetricFamiliesGolden(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := startGatewayWith(t, hostRoutes(t, hostOf(echoBackend(t, "app"))), proxy.Deps{Registerer: reg})
	c := &http.Client{}
	for _, tc := range []struct {
		method, path, host string
		want               int
	}{
		{"GET", "/api/x", "example.test", 200},
		{"POST", "/api/x", "example.test", 200},
		{"BREW", "/api/x", "example.test", 200},
		{"GET", "/dead", "example.test", 502},
		{"GET", "/api/x", "unknown.test", 404},
	} {
		if got := send(t, c, tc.method, g.url+tc.path, tc.host); got != tc.want {
			t.Fatalf("%s %s (host %s): got %d, want %d", tc.method, tc.path, tc.host, got, tc.want)
		}
	}
	drawtest.WaitFor(t, "in-flight back to zero", func() bool {
		return testutil.ToFloat64(gaugeOf(t, reg, "drawbridge_http_requests_in_flight")) == 0
	})

	got := strings.Join(families(t, reg), "\n") + "\n"
	golden := filepath.Join("testdata", "metric_families.golden")
	if *update {
		os.WriteFile(golden, []byte(got), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("metric families differ from %s (-want +got; run with -update if intended):\n%s", golden, diff)
	}

	wantRequests := `
# HELP drawbridge_http_requests_total HTTP requests answered, by listener, route, upstream, method and status class (499: the client left).
# TYPE drawbridge_http_requests_total counter
drawbridge_http_requests_total{listener="edge",method="GET",route="api",status_class="2xx",upstream="app"} 1
drawbridge_http_requests_total{listener="edge",method="GET",route="dead",status_class="5xx",upstream="dead"} 1
drawbridge_http_requests_total{listener="edge",method="GET",route="none",status_class="4xx",upstream="none"} 1
drawbridge_http_requests_total{listener="edge",method="OTHER",route="api",status_class="2xx",upstream="app"} 1
drawbridge_http_requests_total{listener="edge",method="POST",route="api",status_class="2xx",upstream="app"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(wantRequests), "drawbridge_http_requests_total"); err != nil {
		t.Error(err)
	}
	dead := deadTarget(t, reg)
	wantErrors := fmt.Sprintf(`
# HELP drawbridge_upstream_retries_total Attempts that were retries of a failed attempt.
# TYPE drawbridge_upstream_retries_total counter
drawbridge_upstream_retries_total{upstream="dead"} 1
# HELP drawbridge_upstream_errors_total Failed attempts by kind: connect (refused, unreachable, DNS), timeout, tls, other. Client cancellations are not counted.
# TYPE drawbridge_upstream_errors_total counter
drawbridge_upstream_errors_total{kind="connect",target=%q,upstream="dead"} 2
`, dead)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(wantErrors), "drawbridge_upstream_retries_total", "drawbridge_upstream_errors_total"); err != nil {
		t.Error(err)
	}
}

// gaugeOf returns the first series of a gauge family as a Collector for testutil.
func gaugeOf(t *testing.T, g prometheus.Gatherer, name string) prometheus.Collector {
	t.Helper()
	mfs, _ := g.Gather()
	var v float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				v += m.GetGauge().GetValue()
			}
		}
	}
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "x", Help: "x"}, func() float64 { return v })
}

func deadTarget(t *testing.T, g prometheus.Gatherer) string {
	t.Helper()
	mfs, _ := g.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "drawbridge_upstream_target_available" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labelOf(m, "upstream") == "dead" {
				return labelOf(m, "target")
			}
		}
	}
	t.Fatal("no target series for upstream dead")
	return ""
}

func labelOf(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func seriesCount(t *testing.T, g prometheus.Gatherer) int {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		n += len(mf.GetMetric())
	}
	return n
}

// TestRandomPathsAddNoSeries: label values come from the configuration,
// never from the request, so 10,000 requests with random paths, hosts and
// methods leave the number of series as it was after one of each kind.
func TestRandomPathsAddNoSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := startGatewayWith(t, hostRoutes(t, hostOf(echoBackend(t, "app"))), proxy.Deps{Registerer: reg})
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	defer c.CloseIdleConnections()
	kinds := func(r *rand.Rand) (method, path, host string) {
		methods := []string{"GET", "GET", "POST", "X-" + fmt.Sprint(r.IntN(1e6))}
		method = methods[r.IntN(len(methods))]
		path = fmt.Sprintf("/api/%x/%d", r.Uint64(), r.IntN(1000))
		host = "example.test"
		switch r.IntN(4) {
		case 0:
			path = fmt.Sprintf("/%x", r.Uint64()) // no route
		case 1:
			host = fmt.Sprintf("h%d.test", r.IntN(1e6)) // unknown host
		}
		return
	}
	// Warm up: one request of every kind the loop below can make.
	for _, m := range []string{"GET", "POST", "X-1"} {
		for _, p := range []string{"/api/a", "/zz"} {
			for _, h := range []string{"example.test", "h1.test"} {
				send(t, c, m, g.url+p, h)
			}
		}
	}
	before := seriesCount(t, reg)

	const total, workers = 10000, 4
	var wg sync.WaitGroup
	var sent atomic.Int64
	deadline := time.Now().Add(2 * time.Minute)
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 42))
			for i := w; i < total && time.Now().Before(deadline); i += workers {
				m, p, h := kinds(r)
				send(t, c, m, g.url+p, h)
				sent.Add(1)
			}
		})
	}
	wg.Wait()
	if sent.Load() != total {
		t.Fatalf("sent %d requests before the deadline, want %d", sent.Load(), total)
	}
	if after := seriesCount(t, reg); after != before {
		t.Fatalf("got %d series after %d random requests, want %d as before", after, total, before)
	}
}

// TestTracing: the client's trace continues through a server span and one
// client span per attempt (a retry is a sibling), the upstream receives the
// attempt's span as parent along with the baggage, and the access log line
// and the histogram exemplar carry the trace ID.
func TestTracing(t *testing.T) {
	var calls atomic.Int64
	var mu sync.Mutex
	var seen []http.Header
	flaky := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Clone())
		mu.Unlock()
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	})
	a, b := httptest.NewServer(flaky), httptest.NewServer(flaky)
	defer a.Close()
	defer b.Close()

	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	defer tp.Shutdown(context.Background())
	reg := prometheus.NewRegistry()
	cfg := oneRoute(hostOf(a), hostOf(b))
	up := cfg.Upstreams["app"]
	up.Retries = proxy.RetryConfig{Attempts: 2, OnStatus: []int{503}}
	cfg.Upstreams["app"] = up
	cfg.Listeners["edge"].Routes[0].Match.PathPrefix = "/api"
	g := startGatewayWith(t, cfg, proxy.Deps{Registerer: reg, Tracing: tp})

	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	req := newRequest(t, "GET", g.url+"/api/todos", nil)
	req.Header.Set("Traceparent", "00-"+traceID+"-"+parentID+"-01")
	req.Header.Set("Baggage", "tenant=blue")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("got status %d, want 200 after a retry", resp.StatusCode)
	}
	drawtest.WaitFor(t, "three ended spans", func() bool { return len(rec.Ended()) >= 3 })

	var server sdktrace.ReadOnlySpan
	var clients []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		switch s.SpanKind() {
		case trace.SpanKindServer:
			server = s
		case trace.SpanKindClient:
			clients = append(clients, s)
		}
	}
	if server == nil || len(clients) != 2 {
		t.Fatalf("got server span %v and %d client spans, want one and two", server != nil, len(clients))
	}
	if got := server.SpanContext().TraceID().String(); got != traceID {
		t.Errorf("server span trace ID: got %s, want the client's %s", got, traceID)
	}
	if got := server.Parent().SpanID().String(); got != parentID || !server.Parent().IsRemote() {
		t.Errorf("server span parent: got %s (remote %v), want remote %s", got, server.Parent().IsRemote(), parentID)
	}
	if server.Name() != "GET /api" {
		t.Errorf("server span name: got %q, want %q", server.Name(), "GET /api")
	}
	sort.Slice(clients, func(i, j int) bool { return clients[i].StartTime().Before(clients[j].StartTime()) })
	for i, c := range clients {
		if c.Parent().SpanID() != server.SpanContext().SpanID() {
			t.Errorf("client span %d: parent %s, want the server span %s", i, c.Parent().SpanID(), server.SpanContext().SpanID())
		}
	}
	if got := attr(clients[1], "http.request.resend_count"); got != "1" {
		t.Errorf("retry span resend_count: got %q, want 1", got)
	}
	if got := attr(clients[0], "http.response.status_code"); got != "503" {
		t.Errorf("first attempt status: got %q, want 503", got)
	}

	mu.Lock()
	defer mu.Unlock()
	for i, h := range seen {
		want := "00-" + traceID + "-" + clients[i].SpanContext().SpanID().String() + "-01"
		if got := h.Get("Traceparent"); got != want {
			t.Errorf("attempt %d: upstream got traceparent %q, want %q", i+1, got, want)
		}
		if got := h.Get("Baggage"); got != "tenant=blue" {
			t.Errorf("attempt %d: upstream got baggage %q, want tenant=blue", i+1, got)
		}
	}

	drawtest.WaitFor(t, "access log line", func() bool { return len(g.logs.accessLines(t)) >= 1 })
	var line map[string]any
	for _, l := range g.logs.accessLines(t) {
		if l["path"] == "/api/todos" {
			line = l
		}
	}
	if line["trace_id"] != traceID || line["span_id"] != server.SpanContext().SpanID().String() {
		t.Errorf("access log: got trace_id %v span_id %v, want %s and the server span's %s",
			line["trace_id"], line["span_id"], traceID, server.SpanContext().SpanID())
	}
	if ex := exemplarTraceID(t, reg, "drawbridge_http_request_duration_seconds"); ex != traceID {
		t.Errorf("duration exemplar: got trace_id %q, want %s", ex, traceID)
	}
}

func attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.String()
		}
	}
	return ""
}

func exemplarTraceID(t *testing.T, g prometheus.Gatherer, family string) string {
	t.Helper()
	mfs, _ := g.Gather()
	for _, mf := range mfs {
		if mf.GetName() != family {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, b := range m.GetHistogram().GetBucket() {
				if e := b.GetExemplar(); e != nil {
					for _, l := range e.GetLabel() {
						if l.GetName() == "trace_id" {
							return l.GetValue()
						}
					}
				}
			}
			for _, e := range m.GetHistogram().GetExemplars() {
				for _, l := range e.GetLabel() {
					if l.GetName() == "trace_id" {
						return l.GetValue()
					}
				}
			}
		}
	}
	return ""
}

// TestUpstreamTLSHandshakeMetrics: handshakes with https targets are
// counted by TLS version and result, a certificate the gateway does not
// trust as a failure.
func TestUpstreamTLSHandshakeMetrics(t *testing.T) {
	tt := newTestTLS(t)
	good := httptest.NewUnstartedServer(echoBackend(t, "tls").Config.Handler)
	good.TLS = &tls.Config{Certificates: []tls.Certificate{tt.leafNoT("backend")}}
	good.StartTLS()
	defer good.Close()
	untrusted := httptest.NewUnstartedServer(echoBackend(t, "untrusted").Config.Handler)
	untrusted.Config.ErrorLog = log.New(io.Discard, "", 0)
	untrusted.StartTLS() // httptest's own certificate: not from tt
	defer untrusted.Close()

	cfg := proxy.Config{
		Listeners: map[string]proxy.ListenerConfig{"edge": {Routes: []proxy.RouteConfig{
			{Name: "good", Match: proxy.MatchConfig{PathPrefix: "/good"}, Upstream: "good"},
			{Name: "bad", Match: proxy.MatchConfig{PathPrefix: "/bad"}, Upstream: "bad"},
		}}},
		Upstreams: map[string]proxy.UpstreamConfig{
			"good": {Targets: []string{strings.TrimPrefix(good.URL, "https://")}, Protocol: "https"},
			"bad":  {Targets: []string{strings.TrimPrefix(untrusted.URL, "https://")}, Protocol: "https", Retries: proxy.RetryConfig{Attempts: 1}},
		},
		ShutdownGrace: 5 * time.Second,
	}
	reg := prometheus.NewRegistry()
	g := startGatewayWith(t, cfg, proxy.Deps{Registerer: reg, TLS: tt})
	if got := send(t, http.DefaultClient, "GET", g.url+"/good", "x"); got != 200 {
		t.Fatalf("https upstream: got %d, want 200", got)
	}
	if got := send(t, http.DefaultClient, "GET", g.url+"/bad", "x"); got != 502 {
		t.Fatalf("untrusted upstream: got %d, want 502", got)
	}
	want := `
# HELP drawbridge_upstream_tls_handshakes_total TLS handshakes with targets, by TLS version and result.
# TYPE drawbridge_upstream_tls_handshakes_total counter
drawbridge_upstream_tls_handshakes_total{result="failure",upstream="bad",version="unknown"} 1
drawbridge_upstream_tls_handshakes_total{result="success",upstream="good",version="TLS 1.3"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "drawbridge_upstream_tls_handshakes_total"); err != nil {
		t.Error(err)
	}
}
