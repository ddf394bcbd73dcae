package drawtest

import (
	"sync"
	"time"
)

// Clock is a clock a test moves by hand; pass its Now where a part takes a
// clock.
type Clock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

// NewClock returns a Clock set to the current time.
func NewClock() *Clock { return &Clock{t: time.Now()} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// ClockAt returns a Clock set to start.
func ClockAt(start time.Time) *Clock { return &Clock{t: start} }
