package proxy

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// streamBudget bounds the HTTP/2 streams one client connection may open
// per second (limits.max_streams_per_second). Go's server already caps
// concurrent handlers, but a client that opens and resets streams as fast
// as it can (CVE-2023-44487, "rapid reset") keeps the gateway and its
// upstreams busy with requests nobody waits for. Past the budget a stream
// gets 429 with Connection: close, which Go's HTTP/2 server turns into a
// GOAWAY: the connection ends once its streams in flight are done.
type streamBudget struct {
	limit int
	now   func() time.Time

	mu     sync.Mutex // guards the following fields
	window time.Time  // start of the current one-second window
	count  int
}

type streamBudgetKey struct{}

// withStreamBudget gives a new connection's context its stream budget.
func withStreamBudget(ctx context.Context, perSecond int) context.Context {
	return context.WithValue(ctx, streamBudgetKey{}, &streamBudget{limit: perSecond, now: time.Now})
}

// take counts one stream and reports whether it is within the budget.
func (b *streamBudget) take() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if now.Sub(b.window) >= time.Second {
		b.window, b.count = now, 0
	}
	b.count++
	return b.count <= b.limit
}

// overStreamBudget reports an HTTP/2 request past its connection's budget.
func overStreamBudget(r *http.Request) bool {
	if r.ProtoMajor != 2 {
		return false
	}
	b, ok := r.Context().Value(streamBudgetKey{}).(*streamBudget)
	return ok && !b.take()
}
