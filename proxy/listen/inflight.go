package listen

import (
	"context"
	"sync"
)

// InFlight counts handlers still running, upgraded connections included,
// so a drain can wait for them. The zero value is ready to use.
type InFlight struct {
	mu   sync.Mutex    // guards the following fields
	n    int           // handlers running
	idle chan struct{} // closed when n drops to zero; nil until someone waits
}

// Begin counts one more handler running.
func (g *InFlight) Begin() {
	g.mu.Lock()
	g.n++
	g.mu.Unlock()
}

// End counts one handler done.
func (g *InFlight) End() {
	g.mu.Lock()
	g.n--
	if g.n == 0 && g.idle != nil {
		close(g.idle)
		g.idle = nil
	}
	g.mu.Unlock()
}

// Wait returns when nothing is in flight or ctx ends.
func (g *InFlight) Wait(ctx context.Context) {
	g.mu.Lock()
	if g.n == 0 {
		g.mu.Unlock()
		return
	}
	if g.idle == nil {
		g.idle = make(chan struct{}) // made by the waiter: a request costs no channel
	}
	idle := g.idle
	g.mu.Unlock()
	select {
	case <-idle:
	case <-ctx.Done():
	}
}
