package enroll

import (
	"fmt"
	"testing"
	"time"
)

func TestRateGuardBoundsEachSource(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	g := newRateGuard(func() time.Time { return now })
	for i := range rateBurst {
		if ok, _ := g.allow("192.0.2.1"); !ok {
			t.Fatalf("request %d of the burst refused, want %d allowed", i+1, rateBurst)
		}
	}
	ok, wait := g.allow("192.0.2.1")
	if ok {
		t.Fatalf("request %d allowed, want refused after a burst of %d", rateBurst+1, rateBurst)
	}
	if wait <= 0 || wait > time.Second {
		t.Errorf("retry after %s, want (0, 1s] at %d/s", wait, ratePerSecond)
	}
	if ok, _ := g.allow("192.0.2.2"); !ok {
		t.Error("another source was refused: buckets must be per source")
	}
	now = now.Add(time.Second)
	for i := range ratePerSecond {
		if ok, _ := g.allow("192.0.2.1"); !ok {
			t.Fatalf("request %d a second later refused, want %d/s", i+1, ratePerSecond)
		}
	}
	if ok, _ := g.allow("192.0.2.1"); ok {
		t.Error("more than the rate allowed a second later")
	}
}

func TestRateGuardForgetsWithinBound(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	g := newRateGuard(func() time.Time { return now })
	for i := range rateSources + 50 {
		g.allow(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255))
	}
	if n := len(g.buckets); n > rateSources {
		t.Errorf("%d buckets remembered, want at most %d", n, rateSources)
	}
}
