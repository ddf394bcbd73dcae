package proxy

import (
	"strconv"
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

// attemptDone notes an attempt's outcome in the target's stats, then in
// its metrics and span. A 5xx or an error not caused by the client counts
// as a failure.
func (u *upstream) attemptDone(obs *attemptObs, target string, status int, took time.Duration, err error) {
	if st := u.statsFor(target); st != nil {
		switch {
		case err != nil && !classifyErr(err).clientCaused():
			st.fail(err.Error())
		case err == nil && status >= 500:
			st.fail("answered " + strconv.Itoa(status))
		case err == nil:
			st.consecutive.Store(0)
		}
	}
	obs.done(status, took, err)
}

func (st *targetStats) fail(reason string) {
	if len(reason) > 200 {
		reason = reason[:200] + "…"
	}
	st.consecutive.Add(1)
	st.last.Store(&attemptFailure{reason: reason, at: time.Now()})
}
