package breaker

import (
	"testing"
	"time"
)

// clock is a settable clock for a Set.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

// newClocked returns a breaker of cfg (defaulted) on a clock of its own.
func newClocked(t *testing.T, cfg Config) (*Set, *Breaker, *clock) {
	t.Helper()
	cfg.Defaults()
	s := NewSet(cfg, Deps{})
	t.Cleanup(s.Close)
	c := &clock{t: time.Unix(1_000_000, 0)}
	s.now = c.now
	return s, s.For(&target{addr: "a:1"}), c
}

func report(t *testing.T, b *Breaker, kind Kind, status int) {
	t.Helper()
	done, err := b.Allow()
	if err != nil {
		t.Fatalf("attempt refused: %v", err)
	}
	done.Report(kind, status)
}

// Failures that left the rolling window count for nothing: neither in a
// run of failures nor in the ratio.
func TestBreakerWindowForgets(t *testing.T) {
	s, b, c := newClocked(t, Config{ConsecutiveFailures: 3, Window: time.Second, MinRequests: 4, FailureRatio: 0.5})
	report(t, b, Connect, 0)
	report(t, b, Connect, 0)
	c.advance(1100 * time.Millisecond) // both left the window
	report(t, b, Connect, 0)
	report(t, b, Connect, 0)
	if st := s.State("a:1"); st != "closed" {
		t.Fatalf("state %s after 2 + 2 failures a window apart, want closed", st)
	}
	c.advance(500 * time.Millisecond) // half a window: the last two stay
	report(t, b, Connect, 0)
	if st := s.State("a:1"); st != "open" {
		t.Errorf("state %s after 3 failures in a row within the window, want open", st)
	}
}

// An outcome reported after its attempt's bucket left the window, or
// from an earlier state, is dropped.
func TestBreakerDropsStaleReports(t *testing.T) {
	s, b, c := newClocked(t, Config{ConsecutiveFailures: 2, Window: time.Second, OpenTimeout: time.Second})
	slow, err := b.Allow()
	if err != nil {
		t.Fatal(err)
	}
	report(t, b, Connect, 0)
	c.advance(2 * time.Second)
	slow.Report(Connect, 0) // started two windows ago
	if st := s.State("a:1"); st != "closed" {
		t.Fatalf("state %s: a failure reported after its window counted", st)
	}
	old, err := b.Allow()
	if err != nil {
		t.Fatal(err)
	}
	report(t, b, Connect, 0)
	report(t, b, Connect, 0)
	c.advance(1100 * time.Millisecond)
	if st := s.State("a:1"); st != "half-open" {
		t.Fatalf("state %s after the open timeout, want half-open", st)
	}
	old.Report(Response, 200) // allowed while closed: not a trial
	if st := s.State("a:1"); st != "half-open" {
		t.Errorf("state %s: a closed-state attempt's success closed a half-open breaker", st)
	}
}

// A half-open breaker lets half_open_requests trials through; a canceled
// trial frees its place; that many successes close it, one failure
// reopens it.
func TestBreakerHalfOpenTrials(t *testing.T) {
	s, b, c := newClocked(t, Config{ConsecutiveFailures: 1, HalfOpenRequests: 2, OpenTimeout: time.Second})
	report(t, b, Connect, 0)
	if _, err := b.Allow(); err == nil {
		t.Fatal("an open breaker allowed an attempt")
	}
	c.advance(1100 * time.Millisecond)
	first, err1 := b.Allow()
	second, err2 := b.Allow()
	if err1 != nil || err2 != nil {
		t.Fatalf("half-open refused its trials: %v, %v", err1, err2)
	}
	if _, err := b.Allow(); err == nil {
		t.Fatal("half-open allowed a third trial with half_open_requests = 2")
	}
	second.Report(Canceled, 0)
	third, err := b.Allow()
	if err != nil {
		t.Fatalf("a canceled trial kept its place: %v", err)
	}
	first.Report(Response, 200)
	if st := s.State("a:1"); st != "half-open" {
		t.Fatalf("state %s after 1 successful trial of 2, want half-open", st)
	}
	third.Report(Response, 204)
	if st := s.State("a:1"); st != "closed" {
		t.Fatalf("state %s after 2 successful trials, want closed", st)
	}
	report(t, b, Reset, 0)
	c.advance(1100 * time.Millisecond)
	report(t, b, Response, 503)
	if st := s.State("a:1"); st != "open" {
		t.Errorf("state %s after a failed trial, want open", st)
	}
}

// An allowed and reported attempt allocates nothing.
func TestBreakerAttemptAllocatesNothing(t *testing.T) {
	_, b, _ := newClocked(t, Config{})
	if n := testing.AllocsPerRun(100, func() {
		done, _ := b.Allow()
		done.Report(Response, 200)
	}); n != 0 {
		t.Errorf("an attempt costs %.1f allocations, want 0", n)
	}
}
