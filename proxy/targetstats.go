package proxy

import (
	"sync/atomic"
	"time"
)

// targetStats is what the proxy itself saw of one target's attempts,
// independent of health checks: the status page shows a target that keeps
// failing as failing even while no checker has marked it down.
type targetStats struct {
	consecutive atomic.Int64 // failed attempts since the last success
	last        atomic.Pointer[attemptFailure]
}

type attemptFailure struct {
	reason string
	at     time.Time
}

// statsFor returns the stats of a target address, made on first use. The
// addresses are those of the configuration or of service discovery, so
// the map stays bounded.
func (u *upstream) statsFor(addr string) *targetStats {
	if st, ok := u.stats.Load(addr); ok {
		if ts, ok := st.(*targetStats); ok {
			return ts
		}
	}
	fresh := &targetStats{}
	if st, loaded := u.stats.LoadOrStore(addr, fresh); loaded {
		if ts, ok := st.(*targetStats); ok {
			return ts
		}
	}
	return fresh
}

// lastStats returns the stats of addr, or nil when no attempt went there.
func (u *upstream) lastStats(addr string) *targetStats {
	if st, ok := u.stats.Load(addr); ok {
		ts, _ := st.(*targetStats)
		return ts
	}
	return nil
}

func (st *targetStats) fail(reason string) {
	if len(reason) > 200 {
		reason = reason[:200] + "…"
	}
	st.consecutive.Add(1)
	st.last.Store(&attemptFailure{reason: reason, at: time.Now()})
}
