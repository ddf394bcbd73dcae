package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/drawbridge-proxy/drawbridge/cmd/drawbridge/internal/config"
	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
	"github.com/drawbridge-proxy/drawbridge/telemetry/audit"
)

// liveGateway is a gateway composed by serve, in this process.
type liveGateway struct {
	gw    *gateway
	edge  string // base URL of listener "edge"
	admin string // base URL of the admin listener
	logs  *drawtest.Buffer
}

// startLive runs serve on a configuration file whose text is yaml with
// {{EDGE}} and {{ADMIN}} replaced by free loopback addresses.
func startLive(t *testing.T, yaml string) *liveGateway {
	t.Helper()
	yaml = strings.NewReplacer("{{EDGE}}", drawtest.FreeAddr(t), "{{ADMIN}}", drawtest.FreeAddr(t)).Replace(yaml)
	f, err := config.Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	lg := &liveGateway{logs: &drawtest.Buffer{}}
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, f, lg.logs, func(gw *gateway) {
			lg.gw = gw
			close(ready)
		})
	}()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("serve: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve returned %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("gateway did not stop within 30s")
		}
	})
	lg.edge = "http://" + lg.gw.proxy.Addr("edge").String()
	lg.admin = "http://" + lg.gw.admin.Addr().String()
	drawtest.WaitFor(t, "gateway ready", func() bool { return lg.gw.proxy.Ready() })
	return lg
}

func httpGet(t *testing.T, url string, header ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// okBackend answers 200 "ok" and records the request headers it saw.
type okBackend struct {
	*httptest.Server
	mu   sync.Mutex
	seen []http.Header
}

func newOKBackend(t *testing.T) *okBackend {
	b := &okBackend{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.seen = append(b.seen, r.Header.Clone())
		b.mu.Unlock()
		io.WriteString(w, "ok")
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *okBackend) addr() string { return strings.TrimPrefix(b.URL, "http://") }

func (b *okBackend) headers() []http.Header {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]http.Header(nil), b.seen...)
}

// twoTargets is a gateway whose upstream "app" has a healthy target and
// one where nothing listens: every request still succeeds (the failed
// attempt is retried on the healthy target), but one target is failing.
func twoTargets(healthy, dead, extra string) string {
	return gatewayYAML(fmt.Sprintf("[%q, %q]", healthy, dead), extra)
}

// gatewayYAML is listener "edge" routing /api to upstream "app" at targets
// (a YAML list), plus extra top-level sections.
func gatewayYAML(targets, extra string) string {
	return fmt.Sprintf(`
admin: {address: "{{ADMIN}}"}
listeners:
  edge:
    address: "{{EDGE}}"
    routes:
      - {name: api, match: {path_prefix: /api}, upstream: app}
upstreams:
  app:
    targets: %s
    retries: {attempts: 2, backoff_base: 1ms, backoff_max: 2ms}
%s`, targets, extra)
}

// needTool returns the path of a Debian tool the tests drive, skipping when
// it is missing outside CI (.ci/install-deps installs it) and failing in CI.
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	msg := fmt.Sprintf("%s not found: install Debian's %s package (.ci/install-deps does)", name, pkg)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func TestMetricsPassPromtool(t *testing.T) {
	promtool := needTool(t, "promtool", "prometheus")
	be := newOKBackend(t)
	lg := startLive(t, twoTargets(be.addr(), drawtest.FreeAddr(t), ""))
	for range 6 {
		if code, _ := httpGet(t, lg.edge+"/api/x"); code != 200 {
			t.Fatalf("got %d, want 200", code)
		}
	}
	httpGet(t, lg.edge+"/nowhere")
	code, body := httpGet(t, lg.admin+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: got %d", code)
	}
	for _, want := range []string{"drawbridge_build_info{", "go_goroutines", "process_cpu_seconds_total",
		`drawbridge_upstream_errors_total{kind="connect"`, `drawbridge_http_requests_total{listener="edge",method="GET",route="api",status_class="2xx",upstream="app"} 6`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
	// Exemplars need OpenMetrics; the handler offers it when asked.
	_, om := httpGet(t, lg.admin+"/metrics", "Accept", "application/openmetrics-text; version=1.0.0")
	if !strings.HasSuffix(strings.TrimSpace(om), "# EOF") {
		t.Error("OpenMetrics negotiation failed: no # EOF")
	}
}

func TestStatusShowsFailingTarget(t *testing.T) {
	be, dead := newOKBackend(t), drawtest.FreeAddr(t)
	lg := startLive(t, twoTargets(be.addr(), dead, ""))
	for range 4 {
		httpGet(t, lg.edge+"/api/x")
	}
	code, body := httpGet(t, lg.admin+"/status.json")
	if code != 200 {
		t.Fatalf("/status.json: got %d", code)
	}
	var s struct {
		Ready     bool
		Upstreams []struct {
			Name    string
			Targets []struct {
				Address     string
				Failures    int64  `json:"consecutive_failures"`
				LastFailure string `json:"last_failure"`
			}
		}
	}
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatal(err)
	}
	if !s.Ready || len(s.Upstreams) != 1 || len(s.Upstreams[0].Targets) != 2 {
		t.Fatalf("got %s", body)
	}
	for _, tg := range s.Upstreams[0].Targets {
		failing := tg.Failures > 0
		if failing != (tg.Address == dead) {
			t.Errorf("target %s: %d consecutive failures (%q); want failures only on the dead target %s", tg.Address, tg.Failures, tg.LastFailure, dead)
		}
	}
	_, html := httpGet(t, lg.admin+"/status")
	if !strings.Contains(html, `data-target="app/`+dead+`" data-state="failing"`) {
		t.Errorf("status page does not show %s as failing", dead)
	}
}

func TestAdminToken(t *testing.T) {
	tokenFile := writeFile(t, "token", "s3cret-token-0123456789\n")
	be := newOKBackend(t)
	lg := startLive(t, strings.Replace(gatewayYAML(fmt.Sprintf("[%q]", be.addr()), ""),
		`admin: {address: "{{ADMIN}}"}`, `admin: {address: "{{ADMIN}}", token_file: "`+tokenFile+`"}`, 1))
	tests := []struct {
		path   string
		header []string
		want   int
	}{
		{"/metrics", nil, 401},
		{"/status", nil, 401},
		{"/status.json", []string{"Authorization", "Bearer wrong-token-0123456789"}, 401},
		{"/metrics", []string{"Authorization", "Bearer s3cret-token-0123456789"}, 200},
		{"/status", []string{"Authorization", "Basic " + basic("admin", "s3cret-token-0123456789")}, 200},
		{"/livez", nil, 200},
		{"/readyz", nil, 200},
	}
	for _, tc := range tests {
		if code, _ := httpGet(t, lg.admin+tc.path, tc.header...); code != tc.want {
			t.Errorf("GET %s with %v: got %d, want %d", tc.path, tc.header, code, tc.want)
		}
	}
}

func basic(user, pass string) string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(user, pass)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}

// otlpReceiver is an in-process OTLP collector, over HTTP or gRPC.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []*tracepb.Span
	url   string
}

func (r *otlpReceiver) add(req *collectortrace.ExportTraceServiceRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			r.spans = append(r.spans, ss.GetSpans()...)
		}
	}
}

func (r *otlpReceiver) got() []*tracepb.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*tracepb.Span(nil), r.spans...)
}

func newHTTPReceiver(t *testing.T) *otlpReceiver {
	r := &otlpReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/v1/traces" || req.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "unexpected export", http.StatusBadRequest)
			return
		}
		body, _ := io.ReadAll(req.Body)
		var msg collectortrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &msg); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.add(&msg)
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	}))
	t.Cleanup(srv.Close)
	r.url = srv.URL
	return r
}

type grpcTraceService struct {
	collectortrace.UnimplementedTraceServiceServer
	r *otlpReceiver
}

func (s grpcTraceService) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	s.r.add(req)
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func newGRPCReceiver(t *testing.T) *otlpReceiver {
	r := &otlpReceiver{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(srv, grpcTraceService{r: r})
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	r.url = "http://" + ln.Addr().String()
	return r
}

// TestTracingToOTLPReceiver: the spans of a request reach a collector over
// both OTLP transports, linked as browser -> drawbridge server span ->
// drawbridge client span -> upstream, and the upstream sees that link.
func TestTracingToOTLPReceiver(t *testing.T) {
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50") // export every 50ms instead of 5s
	for _, tc := range []struct {
		protocol string
		receiver func(*testing.T) *otlpReceiver
	}{
		{"http/protobuf", newHTTPReceiver},
		{"grpc", newGRPCReceiver},
	} {
		t.Run(tc.protocol, func(t *testing.T) {
			rcv := tc.receiver(t)
			be := newOKBackend(t)
			lg := startLive(t, gatewayYAML(fmt.Sprintf("[%q]", be.addr()), fmt.Sprintf(
				"tracing: {exporter: otlp, protocol: %s, endpoint: %q, service_name: edge-gw}\n", tc.protocol, rcv.url)))
			const traceID, parentID = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
			code, _ := httpGet(t, lg.edge+"/api/items", "Traceparent", "00-"+traceID+"-"+parentID+"-01")
			if code != 200 {
				t.Fatalf("got %d, want 200", code)
			}
			drawtest.WaitFor(t, "two spans at the receiver", func() bool { return len(rcv.got()) >= 2 })
			var server, client *tracepb.Span
			for _, s := range rcv.got() {
				switch s.GetKind() {
				case tracepb.Span_SPAN_KIND_SERVER:
					server = s
				case tracepb.Span_SPAN_KIND_CLIENT:
					client = s
				}
			}
			if server == nil || client == nil {
				t.Fatalf("got spans %v, want a server and a client span", rcv.got())
			}
			hexID := func(b []byte) string { return hex.EncodeToString(b) }
			if hexID(server.GetTraceId()) != traceID || hexID(client.GetTraceId()) != traceID {
				t.Errorf("trace IDs %s and %s, want the browser's %s", hexID(server.GetTraceId()), hexID(client.GetTraceId()), traceID)
			}
			if hexID(server.GetParentSpanId()) != parentID {
				t.Errorf("server span parent %s, want the browser's span %s", hexID(server.GetParentSpanId()), parentID)
			}
			if !bytes.Equal(client.GetParentSpanId(), server.GetSpanId()) {
				t.Errorf("client span parent %s, want the server span %s", hexID(client.GetParentSpanId()), hexID(server.GetSpanId()))
			}
			want := "00-" + traceID + "-" + hexID(client.GetSpanId()) + "-01"
			if h := be.headers(); len(h) != 1 || h[0].Get("Traceparent") != want {
				t.Errorf("upstream saw %v, want traceparent %s", h, want)
			}
		})
	}
}

// TestTracingCollectorDown: a collector that refuses connections, or one
// that accepts them and never answers, costs requests nothing.
func TestTracingCollectorDown(t *testing.T) {
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "20")
	hole, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never reads or answers
	if err != nil {
		t.Fatal(err)
	}
	defer hole.Close()
	go func() {
		for {
			c, err := hole.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	for _, tc := range []struct{ name, endpoint, protocol string }{
		{"refused/http", "http://" + drawtest.FreeAddr(t), "http/protobuf"},
		{"refused/grpc", "http://" + drawtest.FreeAddr(t), "grpc"},
		{"blackhole/http", "http://" + hole.Addr().String(), "http/protobuf"},
		{"blackhole/grpc", "http://" + hole.Addr().String(), "grpc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := newOKBackend(t)
			lg := startLive(t, gatewayYAML(fmt.Sprintf("[%q]", be.addr()), fmt.Sprintf(
				"tracing: {exporter: otlp, protocol: %s, endpoint: %q, timeout: 2s}\n", tc.protocol, tc.endpoint)))
			start := time.Now()
			var slowest time.Duration
			for range 200 {
				t0 := time.Now()
				if code, _ := httpGet(t, lg.edge+"/api/x"); code != 200 {
					t.Fatalf("got %d, want 200 with the collector down", code)
				}
				slowest = max(slowest, time.Since(t0))
			}
			if total := time.Since(start); total > 10*time.Second || slowest > time.Second {
				t.Fatalf("200 requests took %s, slowest %s: the collector being down slowed requests", total, slowest)
			}
			t.Logf("200 requests in %s, slowest %s", time.Since(start), slowest)
		})
	}
}

func TestAuditVerifyCommand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := audit.Open(audit.Config{Path: path}, audit.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range []audit.Event{
		{Name: "secret.read", Subject: "db-password", Actor: "drawbridge"},
		{Name: "cert.issue", Subject: "spiffe://demo/api", Actor: "ca"},
		{Name: "authz.deny", Subject: "spiffe://demo/web", Result: audit.ResultDenied, Reason: "not in allow list"},
	} {
		if err := l.Record(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	code, out, _ := runCLI(t, "audit", "verify", path)
	if code != 0 || !strings.Contains(out, "chain intact: 3 entries") {
		t.Fatalf("intact chain: exit %d, output %q", code, out)
	}
	data, _ := os.ReadFile(path)
	lines := strings.SplitAfter(string(data), "\n")
	tampered := writeFile(t, "tampered.log", lines[0]+strings.Replace(lines[1], "spiffe://demo/api", "spiffe://evil/api", 1)+lines[2])
	code, out, _ = runCLI(t, "audit", "verify", tampered)
	if code != 1 || !strings.Contains(out, "line 2: seq 2: hash does not match") {
		t.Fatalf("tampered entry: exit %d, output %q", code, out)
	}
	gap := writeFile(t, "gap.log", lines[0]+lines[2])
	code, out, _ = runCLI(t, "audit", "verify", gap)
	if code != 1 || !strings.Contains(out, "line 2: seq 3 where 2 was expected") {
		t.Fatalf("removed entry: exit %d, output %q", code, out)
	}
	if code, _, _ := runCLI(t, "audit", "check", path); code != 2 {
		t.Fatalf("unknown audit subcommand: exit %d, want 2", code)
	}
	// After a rotation the files verify together, oldest first; out of
	// order, or with a file missing between them, the join is broken.
	older := writeFile(t, "audit.log.1", lines[0]+lines[1])
	newer := writeFile(t, "audit.log", lines[2])
	code, out, _ = runCLI(t, "audit", "verify", older, newer)
	if code != 0 || !strings.Contains(out, "audit.log: chain intact: 1 entries, last seq 3") {
		t.Fatalf("rotated files in order: exit %d, output %q", code, out)
	}
	if code, out, _ = runCLI(t, "audit", "verify", newer, older); code != 1 {
		t.Fatalf("rotated files out of order: exit %d, output %q", code, out)
	}
}
