package enroll

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Every enrollment or renewal costs the CA a signature, whatever the
// token or certificate turns out to be, so each source (sourceOf) gets a
// token bucket of its own: rateBurst requests at once, then ratePerSecond.
// That is far above what a node's sidecars and edges renew (a few leaves
// a day each), and far below what would keep the CA busy.
const (
	ratePerSecond = 2
	rateBurst     = 20
	rateSources   = guessSources // buckets remembered at most
)

// rateGuard holds a token bucket per source.
type rateGuard struct {
	now func() time.Time

	mu      sync.Mutex // guards buckets
	buckets map[string]*rate.Limiter
}

func newRateGuard(now func() time.Time) *rateGuard {
	return &rateGuard{now: now, buckets: map[string]*rate.Limiter{}}
}

// allow takes one request from src's bucket; when it is empty it reports
// false and how long until the next request would be allowed.
func (g *rateGuard) allow(src string) (bool, time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	l := g.buckets[src]
	if l == nil {
		g.forgetLocked(now)
		l = rate.NewLimiter(ratePerSecond, rateBurst)
		g.buckets[src] = l
	}
	r := l.ReserveN(now, 1)
	if wait := r.DelayFrom(now); wait > 0 {
		r.CancelAt(now) // refused: give the token back
		return false, wait
	}
	return true, 0
}

// forgetLocked bounds the map: full buckets are forgotten first (a new
// one is the same), and if it is still full it is emptied, so a flood
// from many sources cannot grow memory.
func (g *rateGuard) forgetLocked(now time.Time) {
	if len(g.buckets) < rateSources {
		return
	}
	for src, l := range g.buckets {
		if l.TokensAt(now) >= rateBurst {
			delete(g.buckets, src)
		}
	}
	if len(g.buckets) >= rateSources {
		clear(g.buckets)
	}
}
