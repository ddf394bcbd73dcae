package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
	"github.com/drawbridge-proxy/drawbridge/proxy/balancer"
	"github.com/drawbridge-proxy/drawbridge/proxy/discovery"
)

// backend is a real HTTP server on 127.0.0.x that a test can kill and
// bring back on the same address.
type backend struct {
	t       *testing.T
	name    string
	addr    string
	handler http.Handler
	hits    atomic.Int64 // requests other than health checks
	checks  atomic.Int64 // health checks (User-Agent drawbridge-health-check)

	mu  sync.Mutex // guards srv
	srv *http.Server
}

// startBackend serves on addr ("127.0.0.1:0" for any port). Each answer
// carries X-Backend: name. status, if set, decides the status of non-check
// requests.
func startBackend(t *testing.T, name, addr string, status func() int) *backend {
	t.Helper()
	b := &backend{t: t, name: name}
	b.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend", name)
		if r.Header.Get("User-Agent") == "drawbridge-health-check" {
			b.checks.Add(1)
			_, _ = io.WriteString(w, "ok")
			return
		}
		b.hits.Add(1)
		code := http.StatusOK
		if status != nil {
			code = status()
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, name)
	})
	if err := b.listen(addr); err != nil {
		t.Fatalf("backend %s: %v", name, err)
	}
	t.Cleanup(b.kill)
	return b
}

func (b *backend) listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	b.addr = ln.Addr().String()
	srv := &http.Server{Handler: b.handler, ReadHeaderTimeout: 5 * time.Second}
	b.mu.Lock()
	b.srv = srv
	b.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
	return nil
}

// kill closes the listener and every connection at once, as a crash would.
func (b *backend) kill() {
	b.mu.Lock()
	srv := b.srv
	b.srv = nil
	b.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// revive serves again on the same address.
func (b *backend) revive() {
	b.t.Helper()
	var err error
	for range 50 { // the port is ours; a closing socket may hold it for a moment
		if err = b.listen(b.addr); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.t.Fatalf("revive %s: %v", b.name, err)
}

// hangingBackend accepts connections and never answers; accepted counts them.
func hangingBackend(t *testing.T, accepted *atomic.Int64) string {
	t.Helper()
	stop := make(chan struct{})
	addr := drawtest.ServeTCP(t, func(net.Conn) {
		accepted.Add(1)
		<-stop // hold the connection, silent, until the test ends
	})
	t.Cleanup(func() { close(stop) }) // runs before ServeTCP's cleanup
	return addr
}

// testGateway runs a Server with one listener "edge" whose routes are given,
// and returns its base URL, the server and its metrics registry.
type testGateway struct {
	srv  *Server
	url  string
	reg  *prometheus.Registry
	stop func()
}

func startGateway(t *testing.T, upstreams map[string]UpstreamConfig, routes []RouteConfig, resolver discovery.Resolver) *testGateway {
	t.Helper()
	return startGatewayProtocol(t, ProtocolHTTP, upstreams, routes, resolver)
}

// startGatewayProtocol is startGateway with the listener's protocol.
func startGatewayProtocol(t *testing.T, protocol string, upstreams map[string]UpstreamConfig, routes []RouteConfig, resolver discovery.Resolver) *testGateway {
	t.Helper()
	cfg := Config{
		Listeners:     map[string]ListenerConfig{"edge": {Address: "127.0.0.1:0", Protocol: protocol, Routes: routes}},
		Upstreams:     upstreams,
		ShutdownGrace: 2 * time.Second,
		AccessLog:     AccessLogConfig{Disabled: true},
	}
	reg := prometheus.NewRegistry()
	srv, err := New(cfg, Deps{Registerer: reg, Resolver: resolver})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Bind(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	g := &testGateway{srv: srv, url: "http://" + srv.Addr("edge").String(), reg: reg}
	var once sync.Once
	g.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(g.stop)
	return g
}

// leakCheck fails the test if goroutines outlive it. Register it first:
// cleanups run last-in first-out, so it runs after everything else stopped.
func leakCheck(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

// newClient returns a keep-alive client; its idle connections close with the test.
func newClient(t *testing.T) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// result is one client request's fate.
type result struct {
	start   time.Time
	took    time.Duration
	status  int // 0 on a transport error
	backend string
	header  http.Header
}

func get(c *http.Client, url string) result {
	r := result{start: time.Now()}
	resp, err := c.Get(url)
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		r.status, r.backend, r.header = resp.StatusCode, resp.Header.Get("X-Backend"), resp.Header
	}
	r.took = time.Since(r.start)
	return r
}

// load sends GETs from workers until stop is closed, n requests are sent
// or limit passes, whichever comes first, and returns every result.
func load(c *http.Client, url string, workers, n int, limit time.Duration, stop <-chan struct{}) []result {
	var mu sync.Mutex
	var out []result
	var sent atomic.Int64
	deadline := time.Now().Add(limit)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for sent.Add(1) <= int64(n) && time.Now().Before(deadline) {
				select {
				case <-stop:
					return
				default:
				}
				r := get(c, url)
				mu.Lock()
				out = append(out, r)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	sort.Slice(out, func(i, j int) bool { return out[i].start.Before(out[j].start) })
	return out
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(float64(len(s)-1) * p)
	return s[i]
}

// fastUpstream is an upstream tuned for tests: short dial timeout, quick
// backoff, three attempts.
func fastUpstream(targets ...string) UpstreamConfig {
	return UpstreamConfig{
		Targets:  targets,
		Timeouts: UpstreamTimeouts{Dial: 500 * time.Millisecond},
		Retries:  RetryConfig{Attempts: 3, BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond},
	}
}

// metric reads one series of the gateway's registry (0 when absent).
func (g *testGateway) metric(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := g.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			}
		}
	}
	return 0
}

// target returns the pool's target with address addr, or nil.
func (g *testGateway) target(upstream, addr string) *balancer.Target {
	for _, t := range g.srv.upstreams()[upstream].pool.Targets() {
		if t.Addr == addr {
			return t
		}
	}
	return nil
}
