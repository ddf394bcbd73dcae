package cert

import (
	"testing"
	"time"
)

// TestRenewRetryDelay: doubling from the base, capped by a tenth of the
// leaf's life (at most five minutes, at least the base), jittered within
// the upper half.
func TestRenewRetryDelay(t *testing.T) {
	rr := newRenewRetry(5 * time.Second)
	for _, tc := range []struct {
		name     string
		failures int
		life     time.Duration
		rand     float64
		want     time.Duration
	}{
		{"first, no jitter draw", 1, time.Hour, 1, 5 * time.Second},
		{"first, lowest draw", 1, time.Hour, 0, 2500 * time.Millisecond},
		{"third doubles twice", 3, time.Hour, 1, 20 * time.Second},
		{"capped at a tenth of a short life", 8, 3 * time.Minute, 1, 18 * time.Second},
		{"capped at five minutes", 20, 90 * 24 * time.Hour, 1, 5 * time.Minute},
		{"never below the base", 4, 10 * time.Second, 1, 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rr.rand = func() float64 { return tc.rand }
			if got := rr.delay(tc.failures, tc.life); got != tc.want {
				t.Errorf("delay(%d, %v) = %v, want %v", tc.failures, tc.life, got, tc.want)
			}
		})
	}
}
