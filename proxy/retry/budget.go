package retry

import (
	"sync"
	"time"
)

// budgetBuckets is how many slices the budget's window is cut into.
const budgetBuckets = 10

// Budget lets an upstream's retries be at most ratio of the requests of
// the last window, plus a floor per second (Finagle's RetryBudget; the
// Envoy retry budget has the same aim). It counts in ten buckets that
// expire one by one, so the window slides.
type Budget struct {
	ratio  float64
	floor  float64 // retries always allowed per window
	bucket time.Duration
	now    func() time.Time

	mu      sync.Mutex // guards the following fields
	slots   [budgetBuckets]budgetSlot
	current int64 // index of the newest bucket, in bucket periods since the epoch
}

type budgetSlot struct {
	epoch             int64
	requests, retries float64
}

// NewBudget makes a budget of ratio of the requests plus minPerSecond
// retries per second, over window; now nil is time.Now.
func NewBudget(ratio, minPerSecond float64, window time.Duration, now func() time.Time) *Budget {
	if now == nil {
		now = time.Now
	}
	return &Budget{
		ratio:  ratio,
		floor:  minPerSecond * window.Seconds(),
		bucket: window / budgetBuckets,
		now:    now,
	}
}

// slotLocked returns the bucket for now, clearing it if it held an older period.
func (b *Budget) slotLocked() *budgetSlot {
	epoch := b.now().UnixNano() / int64(b.bucket)
	s := &b.slots[epoch%budgetBuckets]
	if s.epoch != epoch {
		*s = budgetSlot{epoch: epoch}
	}
	b.current = epoch
	return s
}

// Request counts one request toward the budget.
func (b *Budget) Request() {
	b.mu.Lock()
	b.slotLocked().requests++
	b.mu.Unlock()
}

// Withdraw takes one retry from the budget; false means it is spent.
func (b *Budget) Withdraw() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	cur := b.slotLocked()
	var requests, retries float64
	for i := range b.slots {
		if s := &b.slots[i]; b.current-s.epoch < budgetBuckets {
			requests += s.requests
			retries += s.retries
		}
	}
	if retries+1 > b.ratio*requests+b.floor {
		return false
	}
	cur.retries++
	return true
}
