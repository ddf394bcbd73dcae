package pki

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/drawbridge-proxy/drawbridge/pki/identity"
)

// TestCAAwayLeavesStayThenRenewalResumes: an enrolling instance whose CA
// stops answering keeps its certificate and stays ready, says since when
// the CA is unreachable (Contact and the gauge), retries with backoff
// rather than on every tick, and renews as soon as the CA is back.
func TestCAAwayLeavesStayThenRenewalResumes(t *testing.T) {
	f := newEnrollFixture(t)
	clock := newFakeClock()
	reg := prometheus.NewRegistry()
	m, ei := f.sidecarWith(t, f.tokenFile(t, tokenAPI), Deps{Clock: clock.Now, Registerer: reg})
	id := identity.MustNew("drawbridge.internal", "sidecar-api")
	ctx := context.Background()
	if err := m.Manage(ctx, id, []string{"api.drawbridge.internal"}); err != nil {
		t.Fatalf("enrolling: %v", err)
	}
	first, _ := m.Certificate(id)
	if c := ei.Contact(); !c.UnreachableSince.IsZero() || c.LastContact.IsZero() {
		t.Fatalf("after enrolling: contact %+v, want reachable with a last contact", c)
	}

	f.away.Store(true)
	ei.probe(ctx)
	away := clock.Now()
	if c := ei.Contact(); !c.UnreachableSince.Equal(away) || c.LastError == "" {
		t.Errorf("CA away: contact %+v, want unreachable since %v with an error", c, away)
	}
	gauge := m.metrics.caUnreachable // the collector shared through reg
	if got := testutil.ToFloat64(gauge); got != float64(away.Unix()) {
		t.Errorf("unreachable gauge = %v, want %v", got, away.Unix())
	}

	// Into the renewal window: the renewal fails, the certificate stays.
	life := first.Leaf.NotAfter.Sub(first.Leaf.NotBefore)
	clock.Advance(life - time.Duration(float64(life)*m.ratio) + time.Minute)
	rr := newRenewRetry(time.Second)
	rr.rand = func() float64 { return 0.99 }
	m.retryRenewals(ctx, rr)
	if c, _ := m.Certificate(id); c.Leaf.SerialNumber.Cmp(first.Leaf.SerialNumber) != 0 {
		t.Fatal("a failed renewal replaced the certificate")
	}
	if err := m.Ready(); err != nil {
		t.Errorf("ready while the CA is away and the leaf is valid: %v", err)
	}
	if ei.Contact().UnreachableSince != away {
		t.Errorf("unreachable since moved to %v, want the first failure %v", ei.Contact().UnreachableSince, away)
	}
	tried := f.requests.Load()
	m.retryRenewals(ctx, rr) // same moment: not due again yet
	if n := f.requests.Load(); n != tried {
		t.Errorf("%d more attempts before the backoff elapsed, want 0", n-tried)
	}

	f.away.Store(false)
	clock.Advance(time.Second)
	m.retryRenewals(ctx, rr)
	if c, _ := m.Certificate(id); c.Leaf.SerialNumber.Cmp(first.Leaf.SerialNumber) == 0 {
		t.Error("the CA is back, the retry is due, and the certificate was not renewed")
	}
	if c := ei.Contact(); !c.UnreachableSince.IsZero() {
		t.Errorf("CA back: contact %+v, want reachable", c)
	}
	if got := testutil.ToFloat64(gauge); got != 0 {
		t.Errorf("unreachable gauge = %v once the CA answers, want 0", got)
	}
}

// TestRenewRetryDelay: doubling from the base, capped by a tenth of the
// leaf's life (at most five minutes, at least the base), jittered within
// the upper half.
func TestRenewRetryDelay(t *testing.T) {
	rr := newRenewRetry(5 * time.Second)
	for _, tc := range []struct {
		name     string
		failures int
		life     time.Duration
		rand     float64
		want     time.Duration
	}{
		{"first, no jitter draw", 1, time.Hour, 1, 5 * time.Second},
		{"first, lowest draw", 1, time.Hour, 0, 2500 * time.Millisecond},
		{"third doubles twice", 3, time.Hour, 1, 20 * time.Second},
		{"capped at a tenth of a short life", 8, 3 * time.Minute, 1, 18 * time.Second},
		{"capped at five minutes", 20, 90 * 24 * time.Hour, 1, 5 * time.Minute},
		{"never below the base", 4, 10 * time.Second, 1, 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rr.rand = func() float64 { return tc.rand }
			if got := rr.delay(tc.failures, tc.life); got != tc.want {
				t.Errorf("delay(%d, %v) = %v, want %v", tc.failures, tc.life, got, tc.want)
			}
		})
	}
}
