package proxy

import (
	"sync"
	"time"

	"github.com/drawbridge-proxy/drawbridge/telemetry/configerr"
)

func (b RetryBudgetConfig) validate(path string, p *configerr.List) {
	if b.Ratio <= 0 || b.Ratio > 1 {
		p.Add(path+".ratio", "must be > 0 and <= 1, got %g", b.Ratio)
	}
	if b.MinPerSecond <= 0 {
		p.Add(path+".min_per_second", "must be > 0")
	}
	if b.Window < time.Second {
		p.Add(path+".window", "must be at least 1s, got %s", b.Window)
	}
}

// budgetBuckets is how many slices the budget's window is cut into.
const budgetBuckets = 10

// retryBudget lets an upstream's retries be at most ratio of the requests
// of the last window, plus a floor per second (Finagle's RetryBudget; the
// Envoy retry budget has the same aim). It counts in ten buckets that
// expire one by one, so the window slides.
type retryBudget struct {
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

func newRetryBudget(cfg RetryBudgetConfig, now func() time.Time) *retryBudget {
	if now == nil {
		now = time.Now
	}
	return &retryBudget{
		ratio:  cfg.Ratio,
		floor:  cfg.MinPerSecond * cfg.Window.Seconds(),
		bucket: cfg.Window / budgetBuckets,
		now:    now,
	}
}

// slotLocked returns the bucket for now, clearing it if it held an older period.
func (b *retryBudget) slotLocked() *budgetSlot {
	epoch := b.now().UnixNano() / int64(b.bucket)
	s := &b.slots[epoch%budgetBuckets]
	if s.epoch != epoch {
		*s = budgetSlot{epoch: epoch}
	}
	b.current = epoch
	return s
}

// request counts one request toward the budget.
func (b *retryBudget) request() {
	b.mu.Lock()
	b.slotLocked().requests++
	b.mu.Unlock()
}

// withdraw takes one retry from the budget; false means it is spent.
func (b *retryBudget) withdraw() bool {
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
