package health

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
)

type fakeTarget struct {
	addr    string
	healthy atomic.Bool
	ejected atomic.Bool
}

func (f *fakeTarget) Address() string         { return f.addr }
func (f *fakeTarget) SetHealthy(ok bool)      { f.healthy.Store(ok) }
func (f *fakeTarget) SetEjected(ejected bool) { f.ejected.Store(ejected) }

// switchProbe passes or fails as the test says, and counts its calls.
type switchProbe struct {
	fail  atomic.Bool
	calls atomic.Int64
}

func (p *switchProbe) probe(context.Context, string) error {
	p.calls.Add(1)
	if p.fail.Load() {
		return errors.New("down")
	}
	return nil
}

// leakCheck fails the test if goroutines outlive it; registered first, it
// runs after every other cleanup.
func leakCheck(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func fastCheck() CheckConfig {
	c := CheckConfig{Type: TypeTCP, Interval: 5 * time.Millisecond, UnhealthyInterval: 2 * time.Millisecond,
		HealthyThreshold: 2, UnhealthyThreshold: 3, Jitter: time.Millisecond}
	c.Defaults()
	return c
}

func runChecker(t *testing.T, c *Checker) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// Rise and fall: a target turns unhealthy only after unhealthy_threshold
// failures in a row, and healthy again after healthy_threshold passes.
func TestCheckerThresholds(t *testing.T) {
	leakCheck(t)
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	p := &switchProbe{}
	tg := &fakeTarget{addr: "10.0.0.1:80"}
	c := NewChecker(fastCheck(), p.probe, Deps{Metrics: m, Upstream: "api"})
	c.Add(tg, true)
	runChecker(t, c)
	eventually(t, "a few checks", func() bool { return p.calls.Load() >= 3 })
	if !tg.healthy.Load() {
		t.Fatal("unhealthy while every check passes")
	}
	p.fail.Store(true)
	start := p.calls.Load()
	eventually(t, "the target to turn unhealthy", func() bool { return !tg.healthy.Load() })
	if n := p.calls.Load() - start; n < 3 {
		t.Errorf("unhealthy after %d failed checks, want 3", n)
	}
	p.fail.Store(false)
	start = p.calls.Load()
	eventually(t, "the target to recover", func() bool { return tg.healthy.Load() })
	if n := p.calls.Load() - start; n < 2 {
		t.Errorf("healthy after %d passed checks, want 2", n)
	}
	if v := testutil.ToFloat64(m.healthy.WithLabelValues("api", tg.addr)); v != 1 {
		t.Errorf("healthy gauge %v, want 1", v)
	}
	if v := testutil.ToFloat64(m.checks.WithLabelValues("api", tg.addr, "fail")); v < 3 {
		t.Errorf("failed checks counted %v, want >= 3", v)
	}
}

// A target added as unhealthy joins only after passing its checks; a
// removed target is no longer checked.
func TestCheckerJoinAndRemove(t *testing.T) {
	leakCheck(t)
	p := &switchProbe{}
	p.fail.Store(true)
	c := NewChecker(fastCheck(), p.probe, Deps{})
	runChecker(t, c)
	tg := &fakeTarget{addr: "10.0.0.2:80"}
	c.Add(tg, false)
	if tg.healthy.Load() {
		t.Fatal("a joining target is healthy before any check")
	}
	eventually(t, "checks", func() bool { return p.calls.Load() >= 5 })
	if tg.healthy.Load() {
		t.Fatal("joined while failing")
	}
	p.fail.Store(false)
	eventually(t, "the target to join", func() bool { return tg.healthy.Load() })
	c.Remove(tg.addr)
	time.Sleep(10 * time.Millisecond) // a check in flight may still finish
	n := p.calls.Load()
	time.Sleep(30 * time.Millisecond)
	if p.calls.Load() != n {
		t.Error("a removed target is still checked")
	}
}

// Admission checks a new target until it passes once, then stops.
func TestAdmission(t *testing.T) {
	leakCheck(t)
	p := &switchProbe{}
	c := NewAdmission(p.probe, Deps{})
	c.cfg.UnhealthyInterval = time.Millisecond
	runChecker(t, c)
	old := &fakeTarget{addr: "10.0.0.1:80"}
	c.Add(old, true)
	fresh := &fakeTarget{addr: "10.0.0.2:80"}
	c.Add(fresh, false)
	eventually(t, "the new target to be admitted", func() bool { return fresh.healthy.Load() })
	time.Sleep(20 * time.Millisecond)
	if n := p.calls.Load(); n != 1 {
		t.Errorf("%d admission checks, want exactly 1 (the known target is never checked)", n)
	}
}

// A probe that panics is a failed check, and the loop goes on.
func TestCheckerRecoversFromPanic(t *testing.T) {
	leakCheck(t)
	var calls atomic.Int64
	c := NewChecker(fastCheck(), func(context.Context, string) error {
		calls.Add(1)
		panic("boom")
	}, Deps{})
	tg := &fakeTarget{addr: "10.0.0.3:80"}
	c.Add(tg, true)
	runChecker(t, c)
	eventually(t, "the target to turn unhealthy", func() bool { return !tg.healthy.Load() })
	eventually(t, "more checks", func() bool { return calls.Load() >= 5 })
}

func TestHTTPProbe(t *testing.T) {
	leakCheck(t)
	var mu sync.Mutex
	status, body := 200, "all good"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" || r.Host != "api.internal" || r.Header.Get("X-Check") != "1" ||
			r.Header.Get("User-Agent") != UserAgent || r.Method != http.MethodHead && r.Method != http.MethodGet {
			w.WriteHeader(http.StatusTeapot)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	defer srv.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	cfg := CheckConfig{Type: TypeHTTP, Path: "/healthz", Host: "api.internal", Headers: map[string]string{"X-Check": "1"},
		ExpectStatus: "2xx", ExpectBody: "good"}
	cfg.Defaults()
	probe, err := NewProbe(cfg, ProbeEnv{Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(srv.URL, "http://")
	tests := []struct {
		name, body string
		status     int
		wantErr    string
	}{
		{"passes", "all good", 200, ""},
		{"wrong status", "all good", 503, "status 503"},
		{"wrong body", "all bad", 200, "body does not contain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			status, body = tt.status, tt.body
			mu.Unlock()
			err := probe(context.Background(), addr)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("probe = %v, want %q", err, tt.wantErr)
			}
		})
	}
	tcp, _ := NewProbe(CheckConfig{Type: TypeTCP}, ProbeEnv{})
	if err := tcp(context.Background(), addr); err != nil {
		t.Errorf("tcp probe: %v", err)
	}
	srv.Close()
	if err := tcp(context.Background(), addr); err == nil {
		t.Error("tcp probe of a closed port passed")
	}
}

func TestParseStatusRange(t *testing.T) {
	tests := []struct {
		in     string
		lo, hi int
		ok     bool
	}{
		{"200-399", 200, 399, true}, {"2xx", 200, 299, true}, {"204", 204, 204, true},
		{"5xx", 500, 599, true}, {"399-200", 0, 0, false}, {"abc", 0, 0, false}, {"6xx", 0, 0, false}, {"99", 0, 0, false},
	}
	for _, tt := range tests {
		lo, hi, err := ParseStatusRange(tt.in)
		if (err == nil) != tt.ok || lo != tt.lo || hi != tt.hi {
			t.Errorf("ParseStatusRange(%q) = %d, %d, %v", tt.in, lo, hi, err)
		}
	}
}

func TestCheckConfigValidate(t *testing.T) {
	c := CheckConfig{Type: "grpc", Path: "healthz", ExpectStatus: "2xx-3xx", Interval: time.Second, Jitter: 2 * time.Second,
		HealthyThreshold: -1, Headers: map[string]string{"Bad Name": "x"}}
	c.Defaults()
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate() = nil")
	}
	for _, key := range []string{"type: ", "path: ", "expect_status: ", "jitter: ", "healthy_threshold: ", "headers: "} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("missing %q in:\n%v", key, err)
		}
	}
	var zero CheckConfig
	zero.Defaults()
	if err := zero.Validate(); err != nil || zero.Enabled() {
		t.Errorf("zero config: %v, enabled %v", err, zero.Enabled())
	}
	if zero.Interval != 5*time.Second || zero.Timeout != 2*time.Second || zero.HealthyThreshold != 2 ||
		zero.UnhealthyThreshold != 3 || zero.UnhealthyInterval != time.Second || zero.Jitter != 500*time.Millisecond {
		t.Errorf("defaults: %+v", zero)
	}
}
