package retry

import (
	"testing"
	"time"
)

// The budget allows ratio x requests + floor retries within its window, and
// frees them as the window slides.
func TestRetryBudget(t *testing.T) {
	now := time.Unix(10_000, 0)
	b := NewBudget(0.2, 1, 10*time.Second, func() time.Time { return now })
	for range 100 {
		b.Request()
	}
	allowed := 0
	for b.Withdraw() {
		allowed++
		if allowed > 1000 {
			t.Fatal("the budget never ran out")
		}
	}
	if want := 20 + 10; allowed != want {
		t.Errorf("%d retries allowed, want ratio*100 + 1/s*10s = %d", allowed, want)
	}
	now = now.Add(5 * time.Second)
	if b.Withdraw() {
		t.Error("a retry allowed while the window still holds the spent budget")
	}
	now = now.Add(6 * time.Second) // the first requests and retries left the window
	if !b.Withdraw() {
		t.Error("the floor did not come back once the window slid")
	}
}
