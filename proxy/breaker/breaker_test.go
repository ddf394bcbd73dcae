package breaker

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
)

type target struct {
	addr  string
	gated atomic.Bool
}

func (t *target) Address() string    { return t.addr }
func (t *target) SetGated(open bool) { t.gated.Store(open) }

func TestPolicy(t *testing.T) {
	tests := []struct {
		name      string
		failureOn []string
		kind      Kind
		status    int
		want      bool
	}{
		{"default 503", nil, Response, 503, true},
		{"default 500", nil, Response, 500, true},
		{"default 404", nil, Response, 404, false},
		{"default 200", nil, Response, 200, false},
		{"default connect", nil, Connect, 0, true},
		{"default timeout", nil, Timeout, 0, true},
		{"default reset", nil, Reset, 0, true},
		{"cancel never", []string{"connect", "timeout", "reset", "5xx", "4xx"}, Canceled, 0, false},
		{"only connect: 500", []string{"connect"}, Response, 500, false},
		{"only connect: timeout", []string{"connect"}, Timeout, 0, false},
		{"429 listed", []string{"429"}, Response, 429, true},
		{"429 listed: 430", []string{"429"}, Response, 430, false},
		{"4xx", []string{"4xx"}, Response, 499, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPolicy(tt.failureOn)
			if got := p.Failed(tt.kind, tt.status); got != tt.want {
				t.Errorf("Failed(%v, %d) = %v, want %v", tt.kind, tt.status, got, tt.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	c := Config{FailureRatio: 2, Window: time.Millisecond, OpenTimeout: -1, FailureOn: []string{"5xx", "oops", "200"}}
	c.Defaults()
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate() = nil")
	}
	for _, want := range []string{"failure_ratio: ", "window: ", "open_timeout: ", "failure_on[1]: ", "failure_on[2]: "} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "failure_on[0]") {
		t.Errorf("5xx reported as a problem:\n%v", err)
	}
	good := Config{}
	good.Defaults()
	if err := good.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
}

func TestInherit(t *testing.T) {
	up := Config{ConsecutiveFailures: 9, FailureOn: []string{"connect"}}
	up.Defaults()
	route := Config{OpenTimeout: time.Minute}
	route.Inherit(up)
	if route.ConsecutiveFailures != 9 || route.OpenTimeout != time.Minute || len(route.FailureOn) != 1 {
		t.Errorf("inherited %+v", route)
	}
}

// A breaker opens after consecutive failures and gates its target, turns
// half-open after the open timeout by itself, and closes on a successful
// trial. Client cancellations count for nothing.
func TestBreakerLifecycle(t *testing.T) {
	defer goleak.VerifyNone(t)
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{ConsecutiveFailures: 3, OpenTimeout: 30 * time.Millisecond}
	cfg.Defaults()
	s := NewSet(cfg, Deps{Metrics: m, Upstream: "api", Gate: true})
	defer s.Close()
	tg := &target{addr: "10.0.0.1:80"}
	b := s.For(tg)
	attempt := func(kind Kind, status int) error {
		done, err := b.Allow()
		if err != nil {
			return err
		}
		done.Report(kind, status)
		return nil
	}
	for range 10 {
		_ = attempt(Canceled, 0)
	}
	_ = attempt(Connect, 0)
	_ = attempt(Response, 404) // a success: resets the run
	for range 2 {
		_ = attempt(Response, 502)
	}
	if tg.gated.Load() || !s.Admits(tg.addr) {
		t.Fatal("open after 2 failures in a row, want 3")
	}
	_ = attempt(Timeout, 0)
	if !tg.gated.Load() || s.Admits(tg.addr) || s.State(tg.addr) != "open" {
		t.Fatalf("not open after 3 failures: gated %v, state %s", tg.gated.Load(), s.State(tg.addr))
	}
	if err := attempt(Response, 200); err == nil {
		t.Fatal("an open breaker allowed an attempt")
	}
	deadline := time.Now().Add(2 * time.Second)
	for tg.gated.Load() { // the timer lifts the gate; nothing calls the breaker meanwhile
		if time.Now().After(deadline) {
			t.Fatal("the gate was never lifted")
		}
		time.Sleep(time.Millisecond)
	}
	if st := s.State(tg.addr); st != "half-open" {
		t.Fatalf("state %s after the open timeout, want half-open", st)
	}
	done, err := b.Allow()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Allow(); err == nil {
		t.Error("half-open allowed more than half_open_requests = 1 trials")
	}
	done.Report(Response, 200)
	if st := s.State(tg.addr); st != "closed" {
		t.Errorf("state %s after a successful trial, want closed", st)
	}
	want := `
# HELP drawbridge_breaker_state Circuit breaker state per upstream target: 0 closed, 1 half-open, 2 open. route is empty for the upstream's own breakers.
# TYPE drawbridge_breaker_state gauge
drawbridge_breaker_state{route="",target="10.0.0.1:80",upstream="api"} 0
# HELP drawbridge_breaker_transitions_total Circuit breaker state changes, by the state entered.
# TYPE drawbridge_breaker_transitions_total counter
drawbridge_breaker_transitions_total{route="",target="10.0.0.1:80",to="closed",upstream="api"} 1
drawbridge_breaker_transitions_total{route="",target="10.0.0.1:80",to="half-open",upstream="api"} 1
drawbridge_breaker_transitions_total{route="",target="10.0.0.1:80",to="open",upstream="api"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	s.Remove(tg.addr)
	if n := testutil.CollectAndCount(m.state); n != 0 {
		t.Errorf("%d state series after Remove, want 0", n)
	}
}

// The failure ratio trips a target that fails often but never many times in
// a row, once the window holds min_requests.
func TestBreakerFailureRatio(t *testing.T) {
	cfg := Config{ConsecutiveFailures: 100, FailureRatio: 0.5, MinRequests: 10}
	cfg.Defaults()
	s := NewSet(cfg, Deps{})
	defer s.Close()
	b := s.For(&target{addr: "a:1"})
	for i := range 11 { // checked on each failure: the 11th attempt fails with 10 finished
		done, err := b.Allow()
		if err != nil {
			t.Fatalf("attempt %d refused", i)
		}
		if i%2 == 0 {
			done.Report(Response, 500)
		} else {
			done.Report(Response, 200)
		}
	}
	if s.State("a:1") != "open" {
		t.Errorf("state %s after 6 failures in 11, want open", s.State("a:1"))
	}
}

func TestDisabledAndNil(t *testing.T) {
	s := NewSet(Config{Disabled: true}, Deps{})
	if s != nil {
		t.Fatal("a disabled set is not nil")
	}
	done, err := s.For(&target{addr: "a:1"}).Allow()
	if err != nil || !s.Admits("a:1") {
		t.Fatal("a nil set refused")
	}
	done.Report(Connect, 0)
	s.Remove("a:1")
	s.Close()
}
