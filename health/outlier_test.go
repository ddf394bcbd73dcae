package health

import (
	"strings"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
)

func newOutlier(t *testing.T, n int) (*Outlier, *drawtest.Clock, []*fakeTarget, []*Tracked) {
	t.Helper()
	clock := drawtest.ClockAt(time.Unix(1000, 0))
	cfg := OutlierConfig{ConsecutiveFailures: 3, BaseEjectionTime: 10 * time.Second, MaxEjectionTime: 35 * time.Second}
	cfg.Defaults()
	o := NewOutlier(cfg, Deps{Now: clock.Now, Upstream: "api"})
	var ts []*fakeTarget
	var ks []*Tracked
	for i := range n {
		ft := &fakeTarget{addr: "10.0.0." + string(rune('1'+i)) + ":80"}
		ts = append(ts, ft)
		ks = append(ks, o.Track(ft))
	}
	return o, clock, ts, ks
}

func fail(k *Tracked, n int) {
	for range n {
		k.Outcome(true)
	}
}

// Consecutive failures eject; a success in between resets the count; the
// ejection ends after its time, and a failure on probation ejects again for
// twice as long, capped by max_ejection_time.
func TestOutlierEjectionGrows(t *testing.T) {
	o, clock, ts, ks := newOutlier(t, 4)
	fail(ks[0], 2)
	ks[0].Outcome(false)
	fail(ks[0], 2)
	if ts[0].ejected.Load() {
		t.Fatal("ejected without 3 failures in a row")
	}
	fail(ks[0], 1)
	if !ts[0].ejected.Load() {
		t.Fatal("not ejected after 3 failures in a row")
	}
	for i, d := range []time.Duration{10 * time.Second, 20 * time.Second, 35 * time.Second, 35 * time.Second} {
		if !ts[0].ejected.Load() {
			t.Fatalf("round %d: not ejected", i)
		}
		clock.Advance(d - time.Second)
		o.sweep()
		if !ts[0].ejected.Load() {
			t.Fatalf("round %d: the %s ejection ended early", i, d)
		}
		clock.Advance(2 * time.Second)
		o.sweep()
		if ts[0].ejected.Load() {
			t.Fatalf("round %d: the %s ejection did not end", i, d)
		}
		ks[0].Outcome(true) // one failure on probation ejects again, for longer
	}
}

// Passing probation shortens the next ejection.
func TestOutlierProbationPasses(t *testing.T) {
	o, clock, ts, ks := newOutlier(t, 2)
	fail(ks[0], 3)
	clock.Advance(11 * time.Second)
	o.sweep()
	for range 3 {
		ks[0].Outcome(false)
	}
	if ks[0].probation.Load() {
		t.Fatal("still on probation after 3 successes")
	}
	fail(ks[0], 2)
	if ts[0].ejected.Load() {
		t.Fatal("after probation, a single failure ejected")
	}
	fail(ks[0], 1)
	clock.Advance(11 * time.Second) // base time again, not doubled
	o.sweep()
	if ts[0].ejected.Load() {
		t.Error("the ejection after a passed probation was not the base time")
	}
}

// Never more than max_ejected_percent of the targets are out at once, and
// an upstream with a single target never ejects it.
func TestOutlierMaxShare(t *testing.T) {
	_, _, ts, ks := newOutlier(t, 4) // 50% of 4 = 2
	for _, k := range ks {
		fail(k, 3)
	}
	var out int
	for _, ft := range ts {
		if ft.ejected.Load() {
			out++
		}
	}
	if out != 2 {
		t.Errorf("%d of 4 ejected, want 2", out)
	}
	_, _, one, k1 := newOutlier(t, 1)
	fail(k1[0], 10)
	if one[0].ejected.Load() {
		t.Error("the only target was ejected")
	}
}

func TestOutlierRemoveFreesShare(t *testing.T) {
	o, _, ts, ks := newOutlier(t, 2)
	fail(ks[0], 3)
	o.Remove(ts[0].addr)
	fail(ks[1], 3)
	if ts[1].ejected.Load() {
		t.Error("with one target left, it was ejected")
	}
	o2, _, ts2, ks2 := newOutlier(t, 4)
	fail(ks2[0], 3)
	fail(ks2[1], 3)
	o2.Remove(ts2[0].addr) // 1 ejected of 3: one more is allowed? 2*100 > 50*3: no
	fail(ks2[2], 3)
	if ts2[2].ejected.Load() {
		t.Error("ejected 2 of 3 targets with max 50%")
	}
}

func TestOutlierDisabledIsNil(t *testing.T) {
	o := NewOutlier(OutlierConfig{Disabled: true}, Deps{})
	if o != nil {
		t.Fatal("disabled outlier detection is not nil")
	}
	k := o.Track(&fakeTarget{addr: "a:1"})
	k.Outcome(true)
	o.Remove("a:1")
}

func TestOutlierConfigValidate(t *testing.T) {
	c := OutlierConfig{ConsecutiveFailures: -1, BaseEjectionTime: time.Minute, MaxEjectionTime: time.Second, MaxEjectedPercent: 101}
	err := c.Validate()
	for _, key := range []string{"consecutive_failures: ", "max_ejection_time: ", "max_ejected_percent: "} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("missing %q in %v", key, err)
		}
	}
}
