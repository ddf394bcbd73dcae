package config

import (
	"errors"
	"testing"
	"time"
)

// The keys of health checks, outlier detection, breakers, retry budgets,
// discovery and fallbacks decode strictly and their problems come back with
// key paths and lines.
func TestResilienceKeys(t *testing.T) {
	const good = `
listeners:
  edge:
    address: "127.0.0.1:8080"
    routes:
      - upstream: api
        fallback: {status: 503, headers: {Content-Type: application/json}, body: '{"error":"down"}'}
        breaker: {consecutive_failures: 2}
      - match: {path_prefix: /b}
        upstream: api
        fallback: {upstream: spare}
upstreams:
  api:
    targets: ["api:8000"]
    health: {type: http, path: /healthz, expect_status: 2xx, interval: 1s}
    outlier: {consecutive_failures: 3, base_ejection_time: 10s}
    breaker: {open_timeout: 2s, failure_on: [connect, timeout, 503]}
    retries: {budget: {ratio: 0.1}}
    discovery: {interval: 2s}
  spare:
    targets: ["127.0.0.1:9000"]
    optional: true
`
	f, err := Parse("good.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	api := f.Upstreams["api"]
	if api.Health.Interval != time.Second || api.Health.UnhealthyThreshold != 3 || api.Breaker.OpenTimeout != 2*time.Second ||
		api.Retries.Budget.Ratio != 0.1 || api.Retries.Budget.MinPerSecond != 3 || api.Discovery.Interval != 2*time.Second {
		t.Errorf("decoded %+v", api)
	}
	route := f.Listeners["edge"].Routes[0]
	if route.Breaker.ConsecutiveFailures != 2 || route.Breaker.OpenTimeout != 2*time.Second {
		t.Errorf("route breaker %+v, want consecutive_failures 2 and open_timeout inherited (2s)", *route.Breaker)
	}

	const bad = `
listeners:
  edge:
    address: "127.0.0.1:8080"
    routes:
      - upstream: api
        fallback: {upstream: api, status: 503}
upstreams:
  api:
    targets: ["api:8000"]
    health:
      type: grpc
      interval: -1s
    breaker:
      failure_on: [teapot]
    retries: {budget: {ratio: 3}}
`
	_, err = Parse("bad.yaml", []byte(bad))
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("Parse = %v, want *Error", err)
	}
	want := map[string]int{
		"listeners.edge.routes[0].fallback":   7,
		"upstreams.api.health.type":           12,
		"upstreams.api.health.interval":       13,
		"upstreams.api.breaker.failure_on[0]": 15,
		"upstreams.api.retries.budget.ratio":  16,
	}
	if len(cerr.Problems) != len(want) {
		t.Errorf("%d problems, want %d:\n%v", len(cerr.Problems), len(want), cerr)
	}
	got := map[string]int{}
	for _, p := range cerr.Problems {
		got[p.Path] = p.Line
	}
	for path, line := range want {
		if got[path] != line {
			t.Errorf("%s: line %d, want %d (all: %v)", path, got[path], line, cerr)
		}
	}
}
