package drawtest

import (
	"testing"
	"time"
)

// WaitLimit is how long WaitFor waits: long enough for a loaded CI runner
// under -race, short enough to fail a stuck test before the test binary's
// own timeout.
const WaitLimit = 15 * time.Second

// WaitFor polls cond every few milliseconds until it holds, and fails t
// (naming what it waited for) when WaitLimit passes first.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	WaitWithin(t, WaitLimit, what, cond)
}

// WaitWithin is WaitFor with its own limit; it returns how long cond took
// to hold.
func WaitWithin(t testing.TB, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Since(start)
}
