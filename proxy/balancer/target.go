package balancer

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Target is one upstream address and its live state.
type Target struct {
	// Addr is the dial address, host:port.
	Addr string

	down     atomic.Bool  // an active health check says it is unhealthy
	ejected  atomic.Bool  // passive outlier detection took it out
	gated    atomic.Bool  // a circuit breaker is open
	draining atomic.Bool  // service discovery removed it: no new picks
	inflight atomic.Int64 // attempts in progress
	weight   atomic.Int32 // share of picks relative to the pool's other targets; 0 drains
	swrr     int64        // smooth weighted round robin's running value; guarded by the picker's mutex

	mu       sync.Mutex // guards the following fields
	ewmaNS   float64    // peak-EWMA of attempt latency, in nanoseconds
	lastSeen time.Time  // when ewmaNS was last updated
	ewmaBits atomic.Uint64
}

// NewTarget returns a target that is available until something says otherwise.
func NewTarget(addr string) *Target {
	t := &Target{Addr: addr}
	t.weight.Store(1)
	return t
}

// NewWeightedTarget returns a target with a weight (see SetWeight).
func NewWeightedTarget(addr string, weight int) *Target {
	t := NewTarget(addr)
	t.SetWeight(weight)
	return t
}

// SetWeight sets t's share of picks relative to the other targets of its
// pool: 90 beside 10 gets nine picks in ten. 0 drains t: attempts in
// flight finish, no new one is picked. A live reload calls it, so weights
// change without touching connections.
func (t *Target) SetWeight(w int) { t.weight.Store(int32(min(max(w, 0), MaxWeight))) }

// Weight returns t's weight (1 unless set).
func (t *Target) Weight() int { return int(t.weight.Load()) }

// MaxWeight bounds a weight, so sums over a pool cannot overflow.
const MaxWeight = 1_000_000

// Address returns Addr; health checkers and breakers know targets by it.
func (t *Target) Address() string { return t.Addr }

// Available reports whether new attempts may go to t.
func (t *Target) Available() bool {
	return !t.down.Load() && !t.ejected.Load() && !t.gated.Load() && !t.draining.Load() && t.weight.Load() > 0
}

// SetHealthy records the verdict of the active health checker.
func (t *Target) SetHealthy(ok bool) { t.down.Store(!ok) }

// Healthy reports the active health checker's last verdict (true before any check).
func (t *Target) Healthy() bool { return !t.down.Load() }

// SetEjected records passive outlier detection taking t out or letting it back.
func (t *Target) SetEjected(ejected bool) { t.ejected.Store(ejected) }

// Ejected reports whether passive outlier detection has taken t out.
func (t *Target) Ejected() bool { return t.ejected.Load() }

// SetGated records whether a circuit breaker refuses attempts to t.
func (t *Target) SetGated(open bool) { t.gated.Store(open) }

// Gated reports whether a circuit breaker refuses attempts to t.
func (t *Target) Gated() bool { return t.gated.Load() }

// SetDraining marks t as removed: it finishes what it has but gets no new picks.
func (t *Target) SetDraining(d bool) { t.draining.Store(d) }

// Draining reports whether t was removed by service discovery.
func (t *Target) Draining() bool { return t.draining.Load() }

// InFlight is the number of attempts in progress on t.
func (t *Target) InFlight() int64 { return t.inflight.Load() }

// Begin counts an attempt to t; call the returned func with the attempt's
// latency when it ends.
func (t *Target) Begin() (end func(latency time.Duration)) {
	t.inflight.Add(1)
	return func(latency time.Duration) {
		t.inflight.Add(-1)
		t.foldLatency(latency, time.Now())
	}
}

// ewmaDecay is the time constant of the latency average: a sample this old
// weighs 1/e of a fresh one. Linkerd and Finagle use 10s.
const ewmaDecay = 10 * time.Second

// foldLatency folds one latency sample into the peak-EWMA: a slower sample
// replaces the average at once (the "peak"), faster ones pull it down slowly.
func (t *Target) foldLatency(latency time.Duration, now time.Time) {
	sample := float64(latency)
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.lastSeen.IsZero() || sample > t.ewmaNS:
		t.ewmaNS = sample
	default:
		elapsed := float64(now.Sub(t.lastSeen))
		w := math.Exp(-elapsed / float64(ewmaDecay))
		t.ewmaNS = t.ewmaNS*w + sample*(1-w)
	}
	t.lastSeen = now
	t.ewmaBits.Store(math.Float64bits(t.ewmaNS))
}

// Latency is the current peak-EWMA attempt latency (zero before any attempt).
func (t *Target) Latency() time.Duration {
	return time.Duration(math.Float64frombits(t.ewmaBits.Load()))
}
