package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/health"
	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
	"github.com/drawbridge-proxy/drawbridge/proxy/discovery"
)

// fakeResolver answers from a table the test changes.
type fakeResolver struct {
	mu      sync.Mutex // guards the following fields
	answers map[string][]netip.Addr
	err     error
	lookups int
}

func (r *fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lookups++
	if r.err != nil {
		return nil, r.err
	}
	a, ok := r.answers[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return a, nil
}

func (r *fakeResolver) set(host string, err error, ips ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.err = err
	r.answers[host] = nil
	for _, ip := range ips {
		r.answers[host] = append(r.answers[host], netip.MustParseAddr(ip))
	}
}

func (r *fakeResolver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lookups
}

var _ discovery.Resolver = (*fakeResolver)(nil)

// A target given as a DNS name is followed: every address becomes a
// target, a new one joins only after passing its health check, a removed
// one stops getting traffic, and a failing lookup keeps the last good set.
func TestDNSNameIsFollowed(t *testing.T) {
	leakCheck(t)
	a := startBackend(t, "a", "127.0.0.1:0", nil)
	_, port, _ := net.SplitHostPort(a.addr)
	probe, err := net.Listen("tcp", "127.0.0.2:"+port)
	if err != nil {
		t.Skipf("a second loopback address is needed: %v", err)
	}
	probe.Close()
	b := startBackend(t, "b", "127.0.0.2:"+port, nil)
	res := &fakeResolver{answers: map[string][]netip.Addr{}}
	res.set("api.test", nil, "127.0.0.1")
	up := fastUpstream("api.test:" + port)
	up.Discovery = discovery.Config{Interval: 20 * time.Millisecond}
	up.Health = health.CheckConfig{Type: health.TypeHTTP, Path: "/healthz", Interval: 20 * time.Millisecond, HealthyThreshold: 2}
	gw := startGateway(t, map[string]UpstreamConfig{"api": up}, []RouteConfig{{Upstream: "api"}}, res)
	c := newClient(t)
	served := func(by string) bool {
		r := get(c, gw.url+"/")
		return r.status == http.StatusOK && r.backend == by
	}

	drawtest.WaitWithin(t, 3*time.Second, "the first address to serve", func() bool { return served("a") })

	res.set("api.test", nil, "127.0.0.1", "127.0.0.2")
	took := drawtest.WaitWithin(t, 3*time.Second, "the new address to join", func() bool { return served("b") })
	if got := b.checks.Load(); got < 2 {
		t.Errorf("b joined after %d health checks, want healthy_threshold = 2", got)
	}
	t.Logf("MEASURE discovery: a new address served %s after the answer changed", took)

	before := res.count()
	res.set("api.test", errors.New("SERVFAIL"))
	drawtest.WaitWithin(t, 3*time.Second, "lookups to fail a few times", func() bool { return res.count() >= before+3 })
	if n := len(gw.srv.upstreams()["api"].pool.Targets()); n != 2 {
		t.Errorf("%d targets during the DNS failure, want the last good 2", n)
	}
	for range 10 {
		if r := get(c, gw.url+"/"); r.status != http.StatusOK {
			t.Fatalf("status %d during the DNS failure", r.status)
		}
	}
	if n := gw.metric(t, "drawbridge_discovery_failures_total", map[string]string{"upstream": "api"}); n < 3 {
		t.Errorf("discovery failures = %v, want >= 3", n)
	}

	res.set("api.test", nil, "127.0.0.2")
	oldA := gw.target("api", a.addr)
	drawtest.WaitWithin(t, 3*time.Second, "the removed address to leave", func() bool { return gw.target("api", a.addr) == nil })
	if !oldA.Draining() {
		t.Error("the removed target is not marked draining")
	}
	hitsA := a.hits.Load()
	for range 20 {
		if !served("b") {
			t.Fatal("a request did not go to the remaining address")
		}
	}
	if a.hits.Load() != hitsA {
		t.Error("the removed address still got requests")
	}
}
