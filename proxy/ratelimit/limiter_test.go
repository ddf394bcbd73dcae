package ratelimit

import (
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func newLimiter(t *testing.T, cfg Config) *Limiter {
	t.Helper()
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return New(cfg)
}

func TestBucketPerKey(t *testing.T) {
	l := newLimiter(t, Config{Rate: 1, Burst: 2})
	now := time.Unix(1000, 0)
	for i, want := range []bool{true, true, false} {
		if ok, _ := l.Allow("a", now); ok != want {
			t.Fatalf("request %d of a: allowed %v, want %v", i, ok, want)
		}
	}
	if ok, _ := l.Allow("b", now); !ok {
		t.Error("b was refused: keys must not share a bucket")
	}
	ok, wait := l.Allow("a", now)
	if ok || wait <= 0 || wait > time.Second {
		t.Errorf("a refused with wait %v, want (0, 1s]", wait)
	}
	// Refusals take no token: one second later exactly one more passes.
	if ok, _ := l.Allow("a", now.Add(time.Second)); !ok {
		t.Error("a refused after a second at 1/s")
	}
}

func TestTableStaysBoundedUnderAFlood(t *testing.T) {
	const maxKeys = 10_000
	l := newLimiter(t, Config{Rate: 5, MaxKeys: maxKeys})
	now := time.Unix(1000, 0)
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	for i := range 100_000 {
		l.Allow("10.0."+strconv.Itoa(i), now)
	}
	after100k := heap()
	for i := range 1_000_000 {
		l.Allow("k"+strconv.Itoa(i), now)
	}
	after1m := heap()
	if n := l.Len(); n > maxKeys {
		t.Errorf("table holds %d keys, want at most %d", n, maxKeys)
	}
	// Ten times the keys, the same memory (allow 25% for GC noise).
	if float64(after1m) > 1.25*float64(after100k) {
		t.Errorf("heap grew from %d to %d bytes between 100k and 1M distinct keys; it must stay flat", after100k, after1m)
	}
	t.Logf("heap after 100k keys %d B, after 1M keys %d B (ratio %.2f), %d keys held", after100k, after1m, float64(after1m)/float64(after100k), l.Len())
}

func TestConcurrentAllow(t *testing.T) {
	l := newLimiter(t, Config{Rate: 1000, Burst: 1000, MaxKeys: 16})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				l.Allow(strconv.Itoa((g*7+i)%40), time.Now())
			}
		}()
	}
	wg.Wait()
	if l.Len() > 16 {
		t.Errorf("%d keys held, want <= 16", l.Len())
	}
}

func TestGate(t *testing.T) {
	g := NewGate(2)
	l1, ok1 := g.Enter()
	_, ok2 := g.Enter()
	if _, ok3 := g.Enter(); !ok1 || !ok2 || ok3 {
		t.Fatalf("admitted %v %v %v, want two of three", ok1, ok2, ok3)
	}
	l1()
	if _, ok := g.Enter(); !ok {
		t.Error("a slot freed by leave was not reused")
	}
	if leave, ok := (*Gate)(nil).Enter(); !ok || leave == nil {
		t.Error("a nil gate must admit")
	}
}

func TestValidate(t *testing.T) {
	c := Config{Rate: 0, Burst: -1, Key: "cookie", MaxKeys: -1}
	err := c.Validate()
	for _, want := range []string{"rate:", "burst:", "key:", "max_keys:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want a problem under %s", err, want)
		}
	}
	c = Config{Rate: 1, Key: KeyHeader, MaxKeys: 1}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "header:") {
		t.Errorf("key: header without a header: %v", err)
	}
}
