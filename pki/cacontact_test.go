package pki

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
	"github.com/drawbridge-proxy/drawbridge/pki/identity"
	"github.com/drawbridge-proxy/drawbridge/pki/part"
)

// TestCAAwayLeavesStayThenRenewalResumes: an enrolling instance whose CA
// stops answering keeps its certificate and stays ready, says since when
// the CA is unreachable (Contact and the gauge), retries with backoff
// rather than on every tick, and renews as soon as the CA is back.
func TestCAAwayLeavesStayThenRenewalResumes(t *testing.T) {
	f := newEnrollFixture(t)
	clock := drawtest.NewClock()
	reg := prometheus.NewRegistry()
	m, ei := f.sidecarWith(t, f.tokenFile(t, tokenAPI), part.Deps{Clock: clock.Now, Registerer: reg})
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
	ei.Probe(ctx)
	away := clock.Now()
	if c := ei.Contact(); !c.UnreachableSince.Equal(away) || c.LastError == "" {
		t.Errorf("CA away: contact %+v, want unreachable since %v with an error", c, away)
	}
	gauge := func() float64 { return gaugeValue(t, reg, "drawbridge_pki_ca_unreachable_since_timestamp_seconds") }
	if got := gauge(); got != float64(away.Unix()) {
		t.Errorf("unreachable gauge = %v, want %v", got, away.Unix())
	}

	// Into the renewal window: the renewal fails, the certificate stays.
	life := first.Leaf.NotAfter.Sub(first.Leaf.NotBefore)
	clock.Advance(life - time.Duration(float64(life)*DefaultRenewalRatio) + time.Minute)
	m.RetryRenewals(ctx)
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
	m.RetryRenewals(ctx) // same moment: not due again yet
	if n := f.requests.Load(); n != tried {
		t.Errorf("%d more attempts before the backoff elapsed, want 0", n-tried)
	}

	f.away.Store(false)
	// The first retry waits at most the base delay, the check interval.
	clock.Advance(DefaultCheckInterval)
	m.RetryRenewals(ctx)
	if c, _ := m.Certificate(id); c.Leaf.SerialNumber.Cmp(first.Leaf.SerialNumber) == 0 {
		t.Error("the CA is back, the retry is due, and the certificate was not renewed")
	}
	if c := ei.Contact(); !c.UnreachableSince.IsZero() {
		t.Errorf("CA back: contact %+v, want reachable", c)
	}
	if got := gauge(); got != 0 {
		t.Errorf("unreachable gauge = %v once the CA answers, want 0", got)
	}
}

// gaugeValue reads the unlabelled gauge name from reg.
func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}
