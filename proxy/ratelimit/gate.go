package ratelimit

import "sync/atomic"

// Gate caps requests in flight. The zero Gate with max 0 admits everything.
type Gate struct {
	max int64
	n   atomic.Int64
}

// NewGate returns a gate admitting at most max at once; 0 means no cap.
func NewGate(max int) *Gate { return &Gate{max: int64(max)} }

// Enter admits one request, or refuses it when max are in flight. Call
// the returned func when an admitted request ends.
func (g *Gate) Enter() (leave func(), ok bool) {
	if g == nil || g.max <= 0 {
		return func() {}, true
	}
	if g.n.Add(1) > g.max {
		g.n.Add(-1)
		return nil, false
	}
	return func() { g.n.Add(-1) }, true
}

// InFlight is the number of requests admitted and not yet ended.
func (g *Gate) InFlight() int64 { return g.n.Load() }
