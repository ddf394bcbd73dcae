package golden

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestWindowsAndPoints(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)} // on a bucket edge
	g := New(c.now)
	// Five minutes of 10 requests a second, 1 in 10 a 502 in the last minute.
	for s := range 300 {
		for i := range 10 {
			status, d := 200, 20*time.Millisecond
			if s >= 240 && i == 0 {
				status, d = 502, 2*time.Second
			}
			g.Observe(Route, "edge", "api", status, d)
		}
		c.t = c.t.Add(time.Second)
	}
	c.t = c.t.Add(-time.Nanosecond) // still inside the last bucket
	snap := g.Snapshot()
	if len(snap) != 1 || snap[0].Group != "edge" || snap[0].Name != "api" || snap[0].Kind != Route {
		t.Fatalf("snapshot %+v", snap)
	}
	st := snap[0]
	if got := st.Last1m; got.Requests != 600 || !near(got.RPS, 10, 0.01) || !near(got.Success, 0.9, 1e-9) {
		t.Errorf("last 1m: %+v, want 600 requests, 10 rps, success 0.9", got)
	}
	if got := st.Last5m; got.Requests != 3000 || !near(got.RPS, 10, 0.01) || !near(got.Success, 0.98, 1e-9) {
		t.Errorf("last 5m: %+v, want 3000 requests, 10 rps, success 0.98", got)
	}
	for name, got := range map[string]time.Duration{"p50": st.Last1m.P50, "p95 (5m)": st.Last5m.P50} {
		if got < 18*time.Millisecond || got > 23*time.Millisecond {
			t.Errorf("%s %v, want about 20ms", name, got)
		}
	}
	if got := st.Last1m.P99; got < 1800*time.Millisecond || got > 2300*time.Millisecond {
		t.Errorf("p99 over the last minute %v, want about 2s (the 502s)", got)
	}
	if len(st.Points) != Buckets {
		t.Fatalf("%d points, want %d", len(st.Points), Buckets)
	}
	if last := st.Points[Buckets-1]; last.Requests != 100 || last.Errors != 10 {
		t.Errorf("latest point %+v, want 100 requests, 10 errors", last)
	}
	if old := st.Points[Buckets-31]; old.Requests != 0 {
		t.Errorf("a point before the traffic began: %+v", old)
	}
	// Fifteen quiet minutes later, the series is gone from the snapshot.
	c.t = c.t.Add(16 * time.Minute)
	if snap := g.Snapshot(); len(snap) != 0 {
		t.Errorf("after 16 quiet minutes: %+v", snap)
	}
}

func TestSeriesAreBounded(t *testing.T) {
	g := New(nil)
	for i := range 3 * MaxSeries {
		g.Observe(Target, "api", fmt.Sprintf("10.0.0.%d:80", i), 200, time.Millisecond)
	}
	snap := g.Snapshot()
	if len(snap) > MaxSeries {
		t.Fatalf("%d series, want at most %d", len(snap), MaxSeries)
	}
	var total int64
	for _, s := range snap {
		total += s.Last1m.Requests
	}
	if total != 3*MaxSeries {
		t.Errorf("%d requests counted, want %d: the overflow series must count the rest", total, 3*MaxSeries)
	}
}

// TestStaleSeriesMakeRoom: once the series that filled the rings have been
// quiet for 15 minutes, new ones get series of their own again.
func TestStaleSeriesMakeRoom(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	g := New(c.now)
	for i := range MaxSeries {
		g.Observe(Target, "old", fmt.Sprint(i), 200, time.Millisecond)
	}
	c.t = c.t.Add(16 * time.Minute)
	g.Observe(Target, "new", "10.0.0.1:80", 200, time.Millisecond)
	snap := g.Snapshot()
	if len(snap) != 1 || snap[0].Group != "new" {
		t.Errorf("after the old series went quiet: %+v, want the new target's own series", snap)
	}
}

func TestConcurrentObserve(t *testing.T) {
	g := New(nil)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				g.Observe(Kind(w%2), "g", fmt.Sprint("s", i%3), 200+100*(i%4), time.Duration(i)*time.Microsecond)
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			_ = g.Snapshot()
		}
	})
	wg.Wait()
	var total int64
	for _, s := range g.Snapshot() {
		total += s.Last1m.Requests
	}
	if total != 8000 {
		t.Errorf("%d requests, want 8000", total)
	}
}

func near(got, want, tol float64) bool { return got >= want-tol && got <= want+tol }

func BenchmarkObserve(b *testing.B) {
	g := New(nil)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			g.Observe(Route, "edge", "api", 200, 3*time.Millisecond)
		}
	})
}
