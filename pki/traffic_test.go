package pki

import (
	"context"
	"crypto/tls"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
	"github.com/drawbridge-proxy/drawbridge/pki/cert"
)

// traffic runs handshakes from workers goroutines against addr until
// stop is closed, counting successes and failures.
type traffic struct {
	ok, failed atomic.Int64
	lastErr    atomic.Value
	wg         sync.WaitGroup
	stop       chan struct{}
}

func startTraffic(addr string, cfg *tls.Config, workers int) *traffic {
	tr := &traffic{stop: make(chan struct{})}
	for range workers {
		tr.wg.Add(1)
		go func() {
			defer tr.wg.Done()
			for {
				select {
				case <-tr.stop:
					return
				default:
				}
				if err := drawtest.DialGreeting(addr, cfg); err != nil {
					tr.failed.Add(1)
					tr.lastErr.Store(err.Error())
				} else {
					tr.ok.Add(1)
				}
			}
		}()
	}
	return tr
}

func (tr *traffic) finish(t *testing.T) {
	t.Helper()
	close(tr.stop)
	tr.wg.Wait()
	t.Logf("handshakes: %d ok, %d failed", tr.ok.Load(), tr.failed.Load())
	if n := tr.failed.Load(); n > 0 {
		t.Errorf("%d handshakes failed, want 0; last: %v", n, tr.lastErr.Load())
	}
	if tr.ok.Load() == 0 {
		t.Error("no handshake succeeded")
	}
}

// waitProgress blocks until n more handshakes have succeeded.
func (tr *traffic) waitProgress(t *testing.T, n int64) {
	t.Helper()
	target := tr.ok.Load() + n
	deadline := time.Now().Add(10 * time.Second)
	for tr.ok.Load() < target {
		if time.Now().After(deadline) {
			t.Fatalf("traffic stalled at %d ok, %d failed", tr.ok.Load(), tr.failed.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRenewalUnderTraffic: one-minute leaves renewed by certmagic on the
// real clock (renewal_ratio 0.8, so every ~7 s) while clients handshake
// continuously with a mutual server: zero failed handshakes.
func TestRenewalUnderTraffic(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for about 20 s")
	}
	cfg := testConfig(t)
	cfg.LeafLifetime = time.Minute
	cfg.CheckInterval = time.Second
	cfg.RenewalRatio = 0.8
	p := newTestPKI(t, cfg, nil)
	api := p.manage(t, "api")
	web := p.manage(t, "web")
	srv, err := p.mgr.ServerConfig(cert.ServerOptions{Identity: api, Mutual: true})
	if err != nil {
		t.Fatal(err)
	}
	cli, err := p.mgr.ClientConfig(cert.ClientOptions{Identity: web, ServerID: api})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, p.mgr, srv)
	tr := startTraffic(addr, cli, 4)

	serials := map[string]bool{}
	deadline := time.Now().Add(25 * time.Second)
	for len(serials) < 3 && time.Now().Before(deadline) {
		for _, id := range []string{"api", "web"} {
			c, err := p.mgr.Certificate(p.id(id))
			if err != nil {
				t.Fatal(err)
			}
			if id == "api" {
				serials[c.Leaf.SerialNumber.String()] = true
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	tr.finish(t)
	if len(serials) < 3 {
		t.Errorf("saw %d server certificates in 25 s, want at least 3 (two renewals)", len(serials))
	}
	if n := counterValue(t, p.reg, "drawbridge_pki_leaf_renewals_total", "renew", "success"); n < 2 {
		t.Errorf("renewals counted: %v, want >= 2", n)
	}
}

// TestIntermediateRenewalAndRootRotationUnderTraffic drives the CA clock
// through about 40 hours in 10-minute steps, with one-hour leaves, a
// four-hour intermediate and a 48-hour root rotated 12 hours before expiry.
// Leaves are renewed as certmagic would (a third of their life left), by
// the CA clock. Clients handshake continuously with a mutual server the
// whole time and every step waits for fresh handshakes: zero may fail
// across intermediate renewals, the rotation and the old root's removal.
func TestIntermediateRenewalAndRootRotationUnderTraffic(t *testing.T) {
	clock := drawtest.NewClock()
	cfg := testConfig(t)
	cfg.RootLifetime = 48 * time.Hour
	cfg.IntermediateLifetime = 4 * time.Hour
	cfg.LeafLifetime = time.Hour
	cfg.RootRotateBefore = 12 * time.Hour
	p := newTestPKI(t, cfg, clock.Now)
	ctx := context.Background()
	api := p.manage(t, "api")
	web := p.manage(t, "web")
	srv, err := p.mgr.ServerConfig(cert.ServerOptions{Identity: api, Mutual: true})
	if err != nil {
		t.Fatal(err)
	}
	cli, err := p.mgr.ClientConfig(cert.ClientOptions{Identity: web, ServerID: api})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, p.mgr, srv)
	tr := startTraffic(addr, cli, 3)

	firstRoot := p.ca.TrustBundle().Roots()[0]
	inters := map[string]bool{}
	sawTwoRoots, droppedOld := false, false
	for step := 0; step < 6*40; step++ {
		clock.Advance(10 * time.Minute)
		if err := p.ca.Maintain(ctx); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"api", "web"} {
			c, err := p.mgr.Certificate(p.id(id))
			if err != nil {
				t.Fatal(err)
			}
			if c.Leaf.NotAfter.Sub(clock.Now()) < c.Leaf.NotAfter.Sub(c.Leaf.NotBefore)/3 {
				if err := p.mgr.Renew(ctx); err != nil {
					t.Fatal(err)
				}
				break // Renew renewed both
			}
		}
		roots := p.ca.TrustBundle().Roots()
		inters[p.ca.Status().Intermediate.Fingerprint] = true
		if len(roots) == 2 {
			sawTwoRoots = true
		}
		if sawTwoRoots && len(roots) == 1 && !roots[0].Equal(firstRoot) {
			droppedOld = true
		}
		tr.waitProgress(t, 3)
	}
	tr.finish(t)
	if !sawTwoRoots || !droppedOld {
		t.Errorf("rotation not completed: saw two roots %v, old root dropped %v", sawTwoRoots, droppedOld)
	}
	if len(inters) < 5 {
		t.Errorf("saw %d intermediates, want several renewals", len(inters))
	}
	_ = api
	_ = web
}
