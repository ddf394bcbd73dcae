package discovery

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

type resolver struct {
	mu      sync.Mutex // guards the following fields
	answers map[string][]string
	err     error
}

func (r *resolver) LookupNetIP(_ context.Context, network, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return nil, r.err
	}
	var out []netip.Addr
	for _, a := range r.answers[host] {
		ip := netip.MustParseAddr(a)
		if network == "ip4" && !ip.Is4() {
			continue
		}
		out = append(out, ip)
	}
	return out, nil
}

func (r *resolver) set(err error, host string, ips ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.err, r.answers[host] = err, ips
}

// The watcher reports the union of names and IP targets, once per change;
// a failing lookup keeps the last good addresses.
func TestWatcher(t *testing.T) {
	defer goleak.VerifyNone(t)
	res := &resolver{answers: map[string][]string{}}
	res.set(nil, "api", "10.0.0.2", "10.0.0.1", "::ffff:10.0.0.1")
	var mu sync.Mutex
	var updates [][]string
	cfg := Config{}
	cfg.Defaults()
	w := New(cfg, []string{"api:8000", "192.0.2.1:9000"}, func(a []string) {
		mu.Lock()
		updates = append(updates, a)
		mu.Unlock()
	}, Deps{Resolver: res})
	ctx := context.Background()
	w.resolve(ctx)
	w.resolve(ctx) // unchanged: no update
	res.set(errors.New("SERVFAIL"), "api")
	w.resolve(ctx) // failing: keeps the last good set, no update
	res.set(nil, "api", "10.0.0.3")
	w.resolve(ctx)
	want := [][]string{
		{"10.0.0.1:8000", "10.0.0.2:8000", "192.0.2.1:9000"},
		{"10.0.0.3:8000", "192.0.2.1:9000"},
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.EqualFunc(updates, want, slices.Equal) {
		t.Errorf("updates %v, want %v", updates, want)
	}
}

// Nothing is reported before the first lookup that yields addresses, and
// Run stops with its context.
func TestWatcherRun(t *testing.T) {
	defer goleak.VerifyNone(t)
	res := &resolver{answers: map[string][]string{}}
	res.set(errors.New("not yet"), "api")
	got := make(chan []string, 10)
	w := New(Config{Interval: time.Millisecond, Timeout: time.Second, Network: "ip"}, []string{"api:80"},
		func(a []string) { got <- a }, Deps{Resolver: res})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = w.Run(ctx); close(done) }()
	time.Sleep(10 * time.Millisecond)
	if len(got) != 0 {
		t.Fatal("an update before any address resolved")
	}
	res.set(nil, "api", "10.1.1.1")
	select {
	case a := <-got:
		if strings.Join(a, ",") != "10.1.1.1:80" {
			t.Errorf("update %v", a)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no update")
	}
	cancel()
	<-done
}

func TestHasNames(t *testing.T) {
	for in, want := range map[string]bool{"10.0.0.1:80": false, "[::1]:80": false, "api:80": true, "tasks.api:80": true} {
		if got := HasNames([]string{in}); got != want {
			t.Errorf("HasNames(%s) = %v", in, got)
		}
	}
}

func TestConfig(t *testing.T) {
	c := Config{Interval: -1, Network: "tcp"}
	c.Defaults()
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "interval: ") || !strings.Contains(err.Error(), "network: ") {
		t.Errorf("Validate() = %v", err)
	}
}
