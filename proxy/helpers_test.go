package proxy_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
	"github.com/drawbridge-proxy/drawbridge/proxy"
)

// syncBuffer collects log output written from many goroutines.
type syncBuffer struct{ drawtest.Buffer }

// accessLines returns the decoded access log lines written so far.
func (s *syncBuffer) accessLines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(s.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", line, err)
		}
		if m["msg"] == "access" {
			out = append(out, m)
		}
	}
	return out
}

type testGateway struct {
	srv    *proxy.Server
	url    string
	addr   string
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

// startGateway runs a proxy.Server for cfg on 127.0.0.1 and stops it at the
// end of the test. Listener "edge" gets a kernel-chosen port unless set.
func startGateway(t *testing.T, cfg proxy.Config) *testGateway {
	t.Helper()
	return startGatewayWith(t, cfg, proxy.Deps{})
}

// startGatewayWith is startGateway with dependencies (TLS) given; the
// logger is always the test's.
func startGatewayWith(t *testing.T, cfg proxy.Config, deps proxy.Deps) *testGateway {
	t.Helper()
	for name, l := range cfg.Listeners {
		if l.Address == "" {
			l.Address = "127.0.0.1:0"
		}
		cfg.Listeners[name] = l
	}
	logs := &syncBuffer{}
	deps.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	srv, err := proxy.New(cfg, deps)
	if err != nil {
		t.Fatalf("proxy.New: %v", err)
	}
	if err := srv.Bind(); err != nil {
		t.Fatalf("Bind: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &testGateway{srv: srv, logs: logs, cancel: cancel, done: make(chan error, 1)}
	g.addr = srv.Addr("edge").String()
	g.url = "http://" + g.addr
	go func() { g.done <- srv.Run(ctx) }()
	t.Cleanup(func() { g.stop(t) })
	drawtest.WaitFor(t, "gateway ready", srv.Ready)
	return g
}

func (g *testGateway) stop(t *testing.T) {
	t.Helper()
	g.cancel()
	select {
	case err := <-g.done:
		if err != nil {
			t.Errorf("Run returned %v, want nil after a clean drain", err)
		}
		g.done <- nil // keep later stop calls from blocking
	case <-time.After(30 * time.Second):
		t.Fatal("gateway did not stop within 30s")
	}
}

// oneRoute is a config with listener "edge" sending everything to upstream
// "app" at the given targets.
func oneRoute(targets ...string) proxy.Config {
	return proxy.Config{
		Listeners: map[string]proxy.ListenerConfig{
			"edge": {Routes: []proxy.RouteConfig{{Name: "all", Upstream: "app"}}},
		},
		Upstreams:     map[string]proxy.UpstreamConfig{"app": {Targets: targets}},
		ShutdownGrace: 5 * time.Second,
	}
}

// echoBackend answers with a JSON description of the request it received.
func echoBackend(t *testing.T, name string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(echoed{
			Backend: name, Method: r.Method, Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath,
			Query: r.URL.RawQuery, Header: r.Header, Body: string(body),
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

type echoed struct {
	Backend string
	Method  string
	Host    string
	Path    string
	RawPath string
	Query   string
	Header  http.Header
	Body    string
}

func hostOf(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }

// get sends a request and decodes the echo, failing the test on a non-200.
func getEcho(t *testing.T, req *http.Request) echoed {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s %s: status %d, want 200; body %s", req.Method, req.URL, resp.StatusCode, b)
	}
	var e echoed
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatalf("decoding echo: %v", err)
	}
	return e
}

func newRequest(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// rawExchange writes a raw HTTP/1.1 request and returns the status line and
// the whole response text, for requests net/http's client refuses to send.
func rawExchange(t *testing.T, addr, request string) (string, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	resp, _ := io.ReadAll(c)
	text := string(resp)
	status, _, _ := strings.Cut(text, "\r\n")
	return status, text
}

// countingListenerBackend starts an echo backend that counts the TCP
// connections it accepts, and returns its address.
func countingListenerBackend(t *testing.T, accepted *atomic.Int64) string {
	t.Helper()
	b := httptest.NewUnstartedServer(echoBackend(t, "counted").Config.Handler)
	b.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			accepted.Add(1)
		}
	}
	b.Start()
	t.Cleanup(b.Close)
	return hostOf(b)
}

// serveForBench runs srv until the returned func is called.
func serveForBench(b *testing.B, srv *proxy.Server) (stop func()) {
	b.Helper()
	if err := srv.Bind(); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	return func() { cancel(); <-done }
}

func decodeLine(t *testing.T, line string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("log line is not JSON: %q", line)
	}
	return m
}
