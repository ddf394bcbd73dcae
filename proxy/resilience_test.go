package proxy

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/health"
	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
	"github.com/drawbridge-proxy/drawbridge/proxy/breaker"
)

// Two targets, one killed under steady load: once the gateway has noticed,
// no request fails, because connection failures are retried on the other
// target and the dead one is gated. Reports the detection time and the
// success rate of the whole run.
func TestKillOneOfTwoUnderLoad(t *testing.T) {
	leakCheck(t)
	a := startBackend(t, "a", "127.0.0.1:0", nil)
	b := startBackend(t, "b", "127.0.0.1:0", nil)
	up := fastUpstream(a.addr, b.addr)
	up.Health = health.CheckConfig{Type: health.TypeHTTP, Path: "/healthz", Interval: 100 * time.Millisecond,
		UnhealthyThreshold: 2, Timeout: 200 * time.Millisecond}
	up.Breaker = breaker.Config{ConsecutiveFailures: 3, OpenTimeout: 10 * time.Second}
	gw := startGateway(t, map[string]UpstreamConfig{"api": up}, []RouteConfig{{Upstream: "api"}}, nil)
	c := newClient(t)

	stop := make(chan struct{})
	results := make(chan []result, 1)
	go func() { results <- load(c, gw.url+"/x", 4, 20000, 4*time.Second, stop) }()
	time.Sleep(300 * time.Millisecond) // steady state first
	killed := time.Now()
	a.kill()
	ta := gw.target("api", a.addr)
	detection := drawtest.WaitWithin(t, 3*time.Second, "the killed target to be taken out", func() bool { return !ta.Available() })
	detected := killed.Add(detection)
	time.Sleep(500 * time.Millisecond) // keep the load on after detection
	close(stop)
	rs := <-results

	var total, ok, failedAfter, afterDetection int
	for _, r := range rs {
		total++
		if r.status == http.StatusOK {
			ok++
		}
		if r.start.After(detected) {
			afterDetection++
			if r.status != http.StatusOK {
				failedAfter++
				t.Errorf("request at +%s after detection: status %d", r.start.Sub(detected), r.status)
			}
		}
	}
	if afterDetection < 10 {
		t.Fatalf("only %d requests after detection; the load did not run", afterDetection)
	}
	t.Logf("MEASURE kill-one-of-two: detection %s (breaker %s, ejected %v, healthy %v); %d/%d requests succeeded (%.3f%%), %d after detection, %d of them failed",
		detection, gw.srv.upstreams()["api"].guards.breakers.State(a.addr), ta.Ejected(), ta.Healthy(),
		ok, total, 100*float64(ok)/float64(total), afterDetection, failedAfter)
}

// One target killed: while its breaker is open every request gets 503 with
// Retry-After at once, without dialling; when the target returns the
// breaker goes half-open, then closed, by itself.
func TestOpenBreakerAnswersFastAndRecovers(t *testing.T) {
	leakCheck(t)
	a := startBackend(t, "a", "127.0.0.1:0", nil)
	up := fastUpstream(a.addr)
	up.Breaker = breaker.Config{ConsecutiveFailures: 3, OpenTimeout: 1500 * time.Millisecond}
	gw := startGateway(t, map[string]UpstreamConfig{"api": up}, []RouteConfig{{Upstream: "api"}}, nil)
	c := newClient(t)
	for range 10 {
		if r := get(c, gw.url+"/"); r.status != http.StatusOK {
			t.Fatalf("warm-up: status %d", r.status)
		}
	}
	a.kill()
	var first503 int
	for i := 1; ; i++ {
		if i > 50 {
			t.Fatal("the breaker never opened")
		}
		if r := get(c, gw.url+"/"); r.status == http.StatusServiceUnavailable {
			first503 = i
			break
		}
	}
	opened := time.Now()
	var lat []time.Duration
	for range 2000 {
		if time.Since(opened) > time.Second {
			break // stay clear of the half-open trial
		}
		r := get(c, gw.url+"/")
		if r.status != http.StatusServiceUnavailable {
			t.Fatalf("status %d while the breaker is open, want 503", r.status)
		}
		if r.header.Get("Retry-After") == "" {
			t.Fatal("503 without Retry-After")
		}
		lat = append(lat, r.took)
	}
	p50, p99, worst := percentile(lat, .5), percentile(lat, .99), percentile(lat, 1)
	t.Logf("MEASURE open breaker: first 503 on request %d; %d 503s: p50 %s, p99 %s, max %s", first503, len(lat), p50, p99, worst)
	if len(lat) < 50 {
		t.Fatalf("only %d requests while open; machine too slow to measure", len(lat))
	}
	if p99 >= 50*time.Millisecond {
		t.Errorf("p99 of 503s while open = %s, want < 50ms", p99)
	}

	a.revive()
	revived := time.Now()
	drawtest.WaitWithin(t, 5*time.Second, "traffic to recover", func() bool { return get(c, gw.url+"/").status == http.StatusOK })
	t.Logf("MEASURE recovery: first 200 %s after the target came back", time.Since(revived))
	labels := map[string]string{"upstream": "api", "target": a.addr}
	for _, to := range []string{"open", "half-open", "closed"} {
		labels["to"] = to
		if gw.metric(t, "drawbridge_breaker_transitions_total", labels) < 1 {
			t.Errorf("no transition to %s recorded", to)
		}
	}
	delete(labels, "to")
	if s := gw.metric(t, "drawbridge_breaker_state", labels); s != 0 {
		t.Errorf("breaker state %v after recovery, want 0 (closed)", s)
	}
}

// A target that accepts connections and never answers trips its breaker on
// per-try timeouts: a few requests wait for the timeout, then the rest are
// answered at once.
func TestHangingTargetTripsOnTimeouts(t *testing.T) {
	leakCheck(t)
	var accepted atomic.Int64
	addr := hangingBackend(t, &accepted)
	up := fastUpstream(addr)
	up.Retries.Attempts = 1
	up.Retries.PerTryTimeout = 100 * time.Millisecond
	up.Breaker = breaker.Config{ConsecutiveFailures: 3, OpenTimeout: 10 * time.Second}
	gw := startGateway(t, map[string]UpstreamConfig{"api": up}, []RouteConfig{{Upstream: "api"}}, nil)
	c := newClient(t)
	start := time.Now()
	var timeouts int
	for i := 0; ; i++ {
		if i > 20 {
			t.Fatal("never tripped")
		}
		r := get(c, gw.url+"/")
		if r.status == http.StatusGatewayTimeout {
			timeouts++
			continue
		}
		if r.status != http.StatusServiceUnavailable {
			t.Fatalf("status %d, want 504 then 503", r.status)
		}
		if r.took > 50*time.Millisecond {
			t.Errorf("503 took %s", r.took)
		}
		break
	}
	t.Logf("tripped after %d timeouts in %s", timeouts, time.Since(start))
	if timeouts != 3 {
		t.Errorf("%d timeouts before the breaker opened, want consecutive_failures = 3", timeouts)
	}
	dialled := accepted.Load()
	for range 20 {
		if r := get(c, gw.url+"/"); r.status != http.StatusServiceUnavailable {
			t.Fatalf("status %d while open, want 503", r.status)
		}
	}
	if n := accepted.Load(); n != dialled {
		t.Errorf("%d new connections to the target while its breaker was open, want none", n-dialled)
	}
}

// A target that flaps between answering and failing with 500 does not turn
// into bursts of 5xx for clients: its breaker opens after
// consecutive_failures, each half-open trial costs at most one request, and
// outlier detection keeps it out for longer each time it fails probation.
func TestFlappingTargetBoundsErrors(t *testing.T) {
	leakCheck(t)
	const phase = 150 * time.Millisecond
	epoch := time.Now()
	bad := func() bool { return (time.Since(epoch)/phase)%2 == 1 }
	steady := startBackend(t, "steady", "127.0.0.1:0", nil)
	flappy := startBackend(t, "flappy", "127.0.0.1:0", func() int {
		if bad() {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	up := fastUpstream(steady.addr, flappy.addr)
	up.Retries.Attempts = 1 // let every failure reach the client, to count them
	up.Breaker = breaker.Config{ConsecutiveFailures: 3, OpenTimeout: 100 * time.Millisecond, HalfOpenRequests: 1}
	up.Outlier = health.OutlierConfig{ConsecutiveFailures: 3, BaseEjectionTime: 200 * time.Millisecond, MaxEjectionTime: 2 * time.Second}
	gw := startGateway(t, map[string]UpstreamConfig{"api": up}, []RouteConfig{{Upstream: "api"}}, nil)
	c := newClient(t)
	const run = 2 * time.Second
	rs := load(c, gw.url+"/", 2, 20000, run, nil)
	var errs, longest, streak int
	for _, r := range rs {
		if r.status >= 500 || r.status == 0 {
			errs++
			streak++
			longest = max(longest, streak)
		} else {
			streak = 0
		}
	}
	badPhases := int(run/phase)/2 + 1
	// Per bad phase: consecutive_failures to open, plus one trial per open
	// timeout (the phase is 1.5 open timeouts long); two workers may each
	// have one attempt in flight when the breaker opens.
	bound := badPhases * (3 + 2 + 2)
	t.Logf("MEASURE flapping: %d requests, %d 5xx (bound %d), longest 5xx run %d; flappy served %d",
		len(rs), errs, bound, longest, flappy.hits.Load())
	if errs > bound {
		t.Errorf("%d 5xx answers, want at most %d", errs, bound)
	}
	if longest > 3+2 {
		t.Errorf("a run of %d 5xx in a row, want at most consecutive_failures + in-flight = 5", longest)
	}
	if len(rs) < 200 {
		t.Errorf("only %d requests; the load did not run", len(rs))
	}
}

// Every target fails with 503 and 503 is retried: the retry budget keeps
// the extra load to its ratio of the requests plus its floor, instead of
// tripling it.
func TestRetryStormCappedByBudget(t *testing.T) {
	leakCheck(t)
	fail := func() int { return http.StatusServiceUnavailable }
	a := startBackend(t, "a", "127.0.0.1:0", fail)
	b := startBackend(t, "b", "127.0.0.1:0", fail)
	up := fastUpstream(a.addr, b.addr)
	up.Retries.Attempts = 3
	up.Retries.OnStatus = []int{503}
	up.Retries.Budget = RetryBudgetConfig{Ratio: 0.1, MinPerSecond: 1, Window: 10 * time.Second}
	up.Breaker.Disabled = true
	up.Outlier.Disabled = true
	gw := startGateway(t, map[string]UpstreamConfig{"api": up}, []RouteConfig{{Upstream: "api"}}, nil)
	c := newClient(t)
	const n = 400
	rs := load(c, gw.url+"/", 4, n, 8*time.Second, nil)
	if len(rs) != n {
		t.Fatalf("%d requests, want %d", len(rs), n)
	}
	hits := a.hits.Load() + b.hits.Load()
	allowed := int64(n + n/10 + 10) // ratio * requests + floor (1/s over a 10s window)
	exhausted := gw.metric(t, "drawbridge_upstream_retry_budget_exhausted_total", map[string]string{"upstream": "api"})
	retries := gw.metric(t, "drawbridge_upstream_retries_total", map[string]string{"upstream": "api"})
	t.Logf("MEASURE retry storm: %d requests made %d upstream attempts (%v retries, %v refused by the budget); without a budget: %d",
		n, hits, retries, exhausted, n*3)
	if hits > allowed {
		t.Errorf("%d upstream attempts, want at most %d", hits, allowed)
	}
	if hits <= n {
		t.Errorf("%d upstream attempts: the budget allowed no retry at all", hits)
	}
	if exhausted == 0 {
		t.Error("budget exhaustion not counted")
	}
	if float64(hits-n) != retries {
		t.Errorf("retries metric %v, backends saw %d retries", retries, hits-n)
	}
}

// A route's fallback answers when no target is available: a static
// response, or another upstream.
func TestFallbacks(t *testing.T) {
	leakCheck(t)
	spare := startBackend(t, "spare", "127.0.0.1:0", nil)
	deadAddr := func() string {
		b := startBackend(t, "dead", "127.0.0.1:0", nil)
		b.kill()
		return b.addr
	}
	down := fastUpstream(deadAddr())
	down.Health = health.CheckConfig{Type: health.TypeTCP, Interval: 20 * time.Millisecond, UnhealthyThreshold: 1}
	down.Optional = true
	gw := startGateway(t, map[string]UpstreamConfig{"down": down, "spare": fastUpstream(spare.addr)}, []RouteConfig{
		{Match: MatchConfig{PathPrefix: "/static"}, Upstream: "down", Fallback: FallbackConfig{
			Status: 503, Headers: map[string]string{"Content-Type": "text/html"}, Body: "<h1>back soon</h1>"}},
		{Match: MatchConfig{PathPrefix: "/spare"}, Upstream: "down", Fallback: FallbackConfig{Upstream: "spare"}},
		{Match: MatchConfig{PathPrefix: "/none"}, Upstream: "down"},
	}, nil)
	target := gw.target("down", down.Targets[0])
	drawtest.WaitWithin(t, 3*time.Second, "the dead target to be marked unhealthy", func() bool { return !target.Healthy() })
	c := newClient(t)

	r := get(c, gw.url+"/static")
	if r.status != 503 || r.header.Get("Content-Type") != "text/html" {
		t.Errorf("static fallback: status %d, Content-Type %q", r.status, r.header.Get("Content-Type"))
	}
	r = get(c, gw.url+"/spare")
	if r.status != 200 || r.backend != "spare" {
		t.Errorf("upstream fallback: status %d from %q, want 200 from spare", r.status, r.backend)
	}
	r = get(c, gw.url+"/none")
	if r.status != 503 || r.header.Get("Retry-After") == "" {
		t.Errorf("no fallback: status %d, Retry-After %q; want 503 with Retry-After", r.status, r.header.Get("Retry-After"))
	}
	for kind, route := range map[string]string{"static": "edge/0", "upstream": "edge/1"} {
		if n := gw.metric(t, "drawbridge_route_fallbacks_total", map[string]string{"route": route, "kind": kind}); n != 1 {
			t.Errorf("fallbacks{route=%s,kind=%s} = %v, want 1", route, kind, n)
		}
	}
	if err := gw.srv.UpstreamReady("down"); err == nil {
		t.Error("UpstreamReady(down) = nil with its only target unhealthy")
	}
	if err := gw.srv.UpstreamReady("spare"); err != nil {
		t.Errorf("UpstreamReady(spare) = %v", err)
	}
	if got := gw.srv.RequiredUpstreams(); len(got) != 1 || got[0] != "spare" {
		t.Errorf("RequiredUpstreams = %v, want [spare]", got)
	}
}

// switchableBackend answers 200, or 500 while failing is set.
func switchableBackend(t *testing.T) (*backend, *atomic.Bool) {
	failing := new(atomic.Bool)
	b := startBackend(t, "a", "127.0.0.1:0", func() int {
		if failing.Load() {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	return b, failing
}

// A route with its own breaker settings gates targets for itself only.
func TestRouteBreakerOverride(t *testing.T) {
	leakCheck(t)
	a, failing := switchableBackend(t)
	up := fastUpstream(a.addr)
	up.Retries.Attempts = 1
	up.Outlier.Disabled = true
	up.Breaker = breaker.Config{ConsecutiveFailures: 100}
	strict := &breaker.Config{ConsecutiveFailures: 2, OpenTimeout: 10 * time.Second}
	gw := startGateway(t, map[string]UpstreamConfig{"api": up}, []RouteConfig{
		{Name: "strict", Match: MatchConfig{PathPrefix: "/strict"}, Upstream: "api", Breaker: strict},
		{Name: "lenient", Match: MatchConfig{PathPrefix: "/lenient"}, Upstream: "api"},
	}, nil)
	c := newClient(t)
	failing.Store(true)
	var got []int
	for range 3 {
		got = append(got, get(c, gw.url+"/strict").status)
	}
	if want := []int{500, 500, 503}; !equalInts(got, want) {
		t.Errorf("strict route statuses %v, want %v", got, want)
	}
	if s := get(c, gw.url+"/lenient").status; s != 500 {
		t.Errorf("lenient route status %d, want 500 (its breaker is still closed)", s)
	}
	failing.Store(false)
	if s := get(c, gw.url+"/lenient").status; s != 200 {
		t.Errorf("lenient route status %d, want 200", s)
	}
	if s := gw.metric(t, "drawbridge_breaker_state", map[string]string{"route": "strict", "target": a.addr}); s != 2 {
		t.Errorf("strict route's breaker state %v, want 2 (open)", s)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestReloadKeepsRouteBreakers: a reload that leaves a route's breaker
// override as it was keeps that route's breakers, open state included, and
// does not add a set of breakers to the upstream on every reload.
func TestReloadKeepsRouteBreakers(t *testing.T) {
	leakCheck(t)
	a, failing := switchableBackend(t)
	up := fastUpstream(a.addr)
	up.Retries.Attempts = 1
	up.Outlier.Disabled = true
	upstreams := map[string]UpstreamConfig{"api": up}
	routes := []RouteConfig{{Name: "strict", Match: MatchConfig{PathPrefix: "/"}, Upstream: "api",
		Breaker: &breaker.Config{ConsecutiveFailures: 2, OpenTimeout: time.Minute}}}
	gw := startGateway(t, upstreams, routes, nil)
	c := newClient(t)
	failing.Store(true)
	for range 2 {
		get(c, gw.url+"/")
	}
	failing.Store(false)
	for range 5 {
		cfg := Config{
			Listeners:     map[string]ListenerConfig{"edge": {Address: "127.0.0.1:0", Protocol: ProtocolHTTP, Routes: routes}},
			Upstreams:     upstreams,
			ShutdownGrace: 2 * time.Second,
			AccessLog:     AccessLogConfig{Disabled: true},
		}
		if err := gw.srv.Reload(cfg); err != nil {
			t.Fatalf("Reload: %v", err)
		}
	}
	if s := get(c, gw.url+"/").status; s != http.StatusServiceUnavailable {
		t.Errorf("after reloads the route answered %d, want 503 from its breaker, still open", s)
	}
	g := gw.srv.upstreams()["api"].guards
	g.mu.Lock()
	n := len(g.routeSets)
	g.mu.Unlock()
	if n != 1 {
		t.Errorf("the upstream holds %d sets of route breakers after 5 reloads, want 1", n)
	}
}
