package balancer

import (
	"math"
	"strings"
	"testing"
	"time"
)

func weighted(ws map[string]int, order ...string) []*Target {
	ts := make([]*Target, len(order))
	for i, a := range order {
		ts[i] = NewWeightedTarget(a, ws[a])
	}
	return ts
}

func TestWeightedSplit(t *testing.T) {
	for _, policy := range Policies {
		t.Run(policy, func(t *testing.T) {
			ts := weighted(map[string]int{"v1": 90, "v2": 10}, "v1", "v2")
			p, _ := NewPool(policy, ts)
			if policy == PeakEWMA { // equal latencies: the split is the weights'
				ts[0].Begin()(10 * time.Millisecond)
				ts[1].Begin()(10 * time.Millisecond)
			}
			counts := map[string]int{}
			const n = 10000
			for range n {
				counts[p.Pick(nil).Addr]++
			}
			share := 100 * float64(counts["v2"]) / n
			if math.Abs(share-10) > 2 {
				t.Errorf("v2 got %.1f%% of %d picks, want 10%% within 2 points", share, n)
			}
		})
	}
}

func TestSmoothWeightedRoundRobinInterleaves(t *testing.T) {
	ts := weighted(map[string]int{"a": 5, "b": 1, "c": 1}, "a", "b", "c")
	p, _ := NewPool(RoundRobin, ts)
	var seq []string
	for range 7 {
		seq = append(seq, p.Pick(nil).Addr)
	}
	// nginx's documented sequence for weights 5, 1, 1.
	if got, want := strings.Join(seq, ""), "aabacaa"; got != want {
		t.Errorf("sequence %s, want %s (the heavy target spread out, not in a run)", got, want)
	}
}

func TestWeightZeroDrains(t *testing.T) {
	for _, policy := range Policies {
		ts := weighted(map[string]int{"old": 0, "new": 3}, "old", "new")
		p, _ := NewPool(policy, ts)
		for range 100 {
			if got := p.Pick(nil).Addr; got != "new" {
				t.Fatalf("%s: picked %s, want only new (old has weight 0)", policy, got)
			}
		}
		ts[1].SetWeight(0)
		if got := p.Pick(nil); got != nil {
			t.Errorf("%s: picked %s with every weight 0, want nil", policy, got.Addr)
		}
		ts[0].SetWeight(1) // a reload brings it back
		if got := p.Pick(nil); got == nil || got.Addr != "old" {
			t.Errorf("%s: after SetWeight(1) picked %v, want old", policy, got)
		}
	}
}

func TestWeightedLeastRequestShiftsFromBusyTarget(t *testing.T) {
	ts := weighted(map[string]int{"heavy": 2, "light": 1}, "heavy", "light")
	p, _ := NewPool(LeastRequest, ts)
	for range 20 {
		ts[0].Begin()
	}
	counts := map[string]int{}
	for range 3000 {
		counts[p.Pick(nil).Addr]++
	}
	if counts["light"] < counts["heavy"] {
		t.Errorf("picks %v: the busy heavy target still wins; load must scale the weights", counts)
	}
}
