package enroll

import (
	"net/netip"
	"sync"
	"time"
)

// Token guessing is bounded per source address: each failed token
// attempt counts, and a source with guessFailures of them within
// guessWindow is locked out for guessLockout, answered 429 before any
// token file is read. Tokens are 32 bytes or more, so guessing is
// hopeless anyway; the lockout keeps it from costing the CA anything
// and makes it loud in the logs and metrics.
const (
	guessFailures = 5
	guessWindow   = time.Minute
	guessLockout  = 5 * time.Minute
	guessSources  = 10000 // sources remembered at most; the oldest are forgotten first
)

// guessGuard counts failed token attempts per source.
type guessGuard struct {
	now func() time.Time

	mu      sync.Mutex // guards sources
	sources map[string]*guessRecord
}

type guessRecord struct {
	first  time.Time // start of the current counting window
	fails  int
	locked time.Time // locked out until then
}

func newGuessGuard(now func() time.Time) *guessGuard {
	return &guessGuard{now: now, sources: map[string]*guessRecord{}}
}

// sourceOf is the source a RemoteAddr counts under: its IPv4 address,
// or its IPv6 /64 (one host usually holds a whole /64).
func sourceOf(remote string) string {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return remote
	}
	a := ap.Addr().Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// lockedOut reports whether src may not try a token now, and until when.
func (g *guessGuard) lockedOut(src string) (time.Time, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	rec := g.sources[src]
	if rec == nil || !g.now().Before(rec.locked) {
		return time.Time{}, false
	}
	return rec.locked, true
}

// failed counts a failed token attempt of src and reports whether it is
// now locked out.
func (g *guessGuard) failed(src string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	rec := g.sources[src]
	if rec == nil {
		g.forgetLocked(now)
		rec = &guessRecord{first: now}
		g.sources[src] = rec
	}
	if now.Sub(rec.first) > guessWindow {
		rec.first, rec.fails = now, 0
	}
	rec.fails++
	if rec.fails >= guessFailures {
		rec.locked = now.Add(guessLockout)
		rec.first, rec.fails = now, 0
		return true
	}
	return false
}

// forgetLocked bounds the map: expired records go first, and if it is
// still full, it is emptied (a flood from many sources should not grow
// memory; the lockouts it loses are regained after guessFailures tries).
func (g *guessGuard) forgetLocked(now time.Time) {
	if len(g.sources) < guessSources {
		return
	}
	for src, rec := range g.sources {
		if now.Sub(rec.first) > guessWindow && !now.Before(rec.locked) {
			delete(g.sources, src)
		}
	}
	if len(g.sources) >= guessSources {
		for src, rec := range g.sources {
			if !now.Before(rec.locked) {
				delete(g.sources, src)
			}
		}
	}
	if len(g.sources) >= guessSources {
		clear(g.sources)
	}
}
