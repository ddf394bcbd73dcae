package enroll

import (
	"testing"
	"time"
)

func TestGuessGuardLocksOutAndForgets(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	g := newGuessGuard(func() time.Time { return now })
	for i := 1; i < guessFailures; i++ {
		if g.failed("192.0.2.1") {
			t.Fatalf("locked out after %d failures, want %d", i, guessFailures)
		}
	}
	if !g.failed("192.0.2.1") {
		t.Fatalf("not locked out after %d failures", guessFailures)
	}
	if _, locked := g.lockedOut("192.0.2.1"); !locked {
		t.Fatal("lockedOut = false right after the lockout")
	}
	if _, locked := g.lockedOut("192.0.2.2"); locked {
		t.Error("another source is locked out too")
	}
	now = now.Add(guessLockout)
	if _, locked := g.lockedOut("192.0.2.1"); locked {
		t.Error("still locked out after the lockout period")
	}
	// Failures spread wider than the window never lock out.
	for range 3 * guessFailures {
		now = now.Add(guessWindow/time.Duration(guessFailures-1) + time.Second)
		if g.failed("192.0.2.3") {
			t.Fatal("slow failures locked the source out")
		}
	}
}

func TestSourceOfGroupsIPv6By64(t *testing.T) {
	if a, b := sourceOf("[2001:db8:1:2::1]:443"), sourceOf("[2001:db8:1:2:ffff::9]:1"); a != b {
		t.Errorf("sources %q and %q of one /64 differ", a, b)
	}
	if got := sourceOf("192.0.2.7:5000"); got != "192.0.2.7" {
		t.Errorf("sourceOf IPv4 = %q", got)
	}
}
