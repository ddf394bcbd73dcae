package balancer

import (
	"testing"
	"time"
)

func targets(addrs ...string) []*Target {
	ts := make([]*Target, len(addrs))
	for i, a := range addrs {
		ts[i] = NewTarget(a)
	}
	return ts
}

func TestRoundRobinCyclesAndSkipsUnavailable(t *testing.T) {
	ts := targets("a", "b", "c")
	p, err := NewPool(RoundRobin, ts)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for i := 0; i < 300; i++ {
		counts[p.Pick(nil).Addr]++
	}
	for _, a := range []string{"a", "b", "c"} {
		if counts[a] != 100 {
			t.Errorf("%s picked %d times of 300, want 100", a, counts[a])
		}
	}
	ts[1].SetHealthy(false)
	ts[2].SetGated(true)
	for i := 0; i < 10; i++ {
		if got := p.Pick(nil).Addr; got != "a" {
			t.Fatalf("picked %s, want only the available a", got)
		}
	}
}

func TestPickAvoidsTheFailedTarget(t *testing.T) {
	for _, policy := range Policies {
		t.Run(policy, func(t *testing.T) {
			ts := targets("a", "b")
			p, _ := NewPool(policy, ts)
			for i := 0; i < 50; i++ {
				if got := p.Pick(ts[0]); got != ts[1] {
					t.Fatalf("Pick(avoid a) = %s, want b", got.Addr)
				}
			}
			// The avoided target is still used when it is the only one left.
			ts[1].SetEjected(true)
			if got := p.Pick(ts[0]); got != ts[0] {
				t.Fatalf("Pick(avoid a) with b ejected = %v, want a", got)
			}
		})
	}
}

func TestNoAvailableTarget(t *testing.T) {
	ts := targets("a", "b")
	p, _ := NewPool(LeastRequest, ts)
	ts[0].SetHealthy(false)
	ts[1].SetDraining(true)
	if got := p.Pick(nil); got != nil {
		t.Errorf("Pick = %s, want nil when nothing is available", got.Addr)
	}
	if p.AnyAvailable() {
		t.Error("AnyAvailable = true, want false")
	}
	empty, _ := NewPool(RoundRobin, nil)
	if empty.Pick(nil) != nil {
		t.Error("an empty pool picked something")
	}
}

func TestLeastRequestPrefersIdleTargets(t *testing.T) {
	ts := targets("busy", "idle")
	p, _ := NewPool(LeastRequest, ts)
	for i := 0; i < 10; i++ {
		ts[0].Begin()
	}
	for i := 0; i < 100; i++ {
		if got := p.Pick(nil).Addr; got != "idle" {
			t.Fatalf("picked %s, want idle (two targets: P2C always compares both)", got)
		}
	}
}

func TestPeakEWMAPrefersFastTargets(t *testing.T) {
	ts := targets("slow", "fast")
	p, _ := NewPool(PeakEWMA, ts)
	ts[0].Begin()(200 * time.Millisecond)
	ts[1].Begin()(5 * time.Millisecond)
	for i := 0; i < 100; i++ {
		if got := p.Pick(nil).Addr; got != "fast" {
			t.Fatalf("picked %s, want fast", got)
		}
	}
}

func TestPeakEWMAJumpsUpAndDecaysSlowly(t *testing.T) {
	tg := NewTarget("a")
	now := time.Now()
	tg.foldLatency(10*time.Millisecond, now)
	tg.foldLatency(100*time.Millisecond, now.Add(time.Millisecond))
	if got := tg.Latency(); got != 100*time.Millisecond {
		t.Fatalf("after a slow sample latency = %s, want the peak 100ms", got)
	}
	tg.foldLatency(10*time.Millisecond, now.Add(2*time.Millisecond))
	if got := tg.Latency(); got < 90*time.Millisecond {
		t.Fatalf("one fast sample right after pulled latency to %s; the decay is too fast", got)
	}
	tg.foldLatency(10*time.Millisecond, now.Add(time.Minute))
	if got := tg.Latency(); got > 15*time.Millisecond {
		t.Fatalf("a minute later latency = %s, want it decayed toward 10ms", got)
	}
}

func TestUnknownPolicy(t *testing.T) {
	if _, err := NewPool("random", nil); err == nil {
		t.Fatal("NewPool accepted an unknown policy")
	}
}

func BenchmarkPick(b *testing.B) {
	for _, policy := range Policies {
		b.Run(policy, func(b *testing.B) {
			p, _ := NewPool(policy, targets("a", "b", "c", "d"))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					p.Pick(nil)
				}
			})
		})
	}
}
