package health

import (
	"context"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/drawbridge-proxy/drawbridge/internal/loop"
)

// Ejectable is what outlier detection takes out and lets back; the proxy's
// balancer targets satisfy it.
type Ejectable interface {
	Address() string
	SetEjected(ejected bool)
}

// Outlier is passive health: it watches the outcome of real attempts and
// ejects a target after consecutive failures, for a time that doubles with
// each ejection in a row. An ejected target comes back on probation: its
// first failure ejects it again; enough successes end the probation and
// shorten the next ejection.
type Outlier struct {
	cfg  OutlierConfig
	deps Deps
	log  *slog.Logger

	mu      sync.Mutex // guards the following fields and the guarded fields of every Tracked
	targets map[string]*Tracked
	ejected int
}

// Tracked is one target under outlier detection.
type Tracked struct {
	o         *Outlier
	target    Ejectable
	fails     atomic.Int32 // consecutive failed attempts
	probation atomic.Bool

	// guarded by o.mu
	ejections int       // ejections in a row; grows the ejection time
	until     time.Time // non-zero while ejected
	passes    int       // successes during probation
}

// NewOutlier returns outlier detection for cfg (defaulted and validated),
// or nil when it is disabled; a nil *Outlier tracks nothing.
func NewOutlier(cfg OutlierConfig, deps Deps) *Outlier {
	if cfg.Disabled {
		return nil
	}
	deps.defaults()
	return &Outlier{cfg: cfg, deps: deps, targets: map[string]*Tracked{}, log: deps.Logger.With("upstream", deps.Upstream)}
}

// Track starts watching t and returns the handle its attempts report to.
// Tracking an address twice returns the same handle.
func (o *Outlier) Track(t Ejectable) *Tracked {
	if o == nil {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	addr := t.Address()
	if k, ok := o.targets[addr]; ok {
		return k
	}
	k := &Tracked{o: o, target: t}
	o.targets[addr] = k
	o.deps.Metrics.setEjected(o.deps.Upstream, addr, false)
	return k
}

// Remove stops watching addr (service discovery removed it).
func (o *Outlier) Remove(addr string) {
	if o == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	k, ok := o.targets[addr]
	if !ok {
		return
	}
	if !k.until.IsZero() {
		o.ejected--
	}
	delete(o.targets, addr)
	o.deps.Metrics.forgetOutlier(o.deps.Upstream, addr)
}

// Outcome records the outcome of one attempt on the target. The common
// case (a success with nothing to undo) takes no lock.
func (k *Tracked) Outcome(failed bool) {
	if k == nil {
		return
	}
	if !failed {
		if k.fails.Load() != 0 {
			k.fails.Store(0)
		}
		if k.probation.Load() {
			k.o.probationPass(k)
		}
		return
	}
	threshold := int32(min(k.o.cfg.ConsecutiveFailures, math.MaxInt32)) //nolint:gosec // G115: clamped
	if k.probation.Load() {
		threshold = 1
	}
	if k.fails.Add(1) >= threshold {
		k.o.eject(k)
	}
}

func (o *Outlier) probationPass(k *Tracked) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !k.probation.Load() || !k.until.IsZero() {
		return
	}
	k.passes++
	if k.passes >= o.cfg.ConsecutiveFailures {
		k.probation.Store(false)
		k.ejections = max(0, k.ejections-1)
		o.log.Info("target passed probation", "target", k.target.Address())
	}
}

// eject takes k out unless it is already out, it was removed, or the
// upstream's share of ejected targets is reached.
func (o *Outlier) eject(k *Tracked) {
	o.mu.Lock()
	defer o.mu.Unlock()
	k.fails.Store(0)
	addr := k.target.Address()
	if !k.until.IsZero() || o.targets[addr] != k {
		return
	}
	if (o.ejected+1)*100 > o.cfg.MaxEjectedPercent*len(o.targets) {
		return // the breaker still guards the target; ejecting more would overload the rest
	}
	k.ejections++
	d := o.cfg.BaseEjectionTime
	for i := 1; i < k.ejections && d < o.cfg.MaxEjectionTime; i++ {
		d *= 2
	}
	d = min(d, o.cfg.MaxEjectionTime)
	k.until = o.deps.Now().Add(d)
	k.probation.Store(false)
	k.passes = 0
	o.ejected++
	k.target.SetEjected(true)
	o.deps.Metrics.setEjected(o.deps.Upstream, addr, true)
	o.log.Warn("target ejected", "target", addr, "for", d.String(), "ejections_in_a_row", k.ejections)
}

// Run lets ejected targets back when their time is up, until ctx ends.
func (o *Outlier) Run(ctx context.Context) error {
	if o == nil {
		<-ctx.Done()
		return nil
	}
	return loop.Every(ctx, min(max(o.cfg.BaseEjectionTime/10, 10*time.Millisecond), time.Second), func() {
		_ = loop.Guard(o.log, "outlier sweep panicked", func() error { o.sweep(); return nil })
	})
}

// sweep returns every target whose ejection is over, on probation.
func (o *Outlier) sweep() {
	now := o.deps.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	for addr, k := range o.targets {
		if k.until.IsZero() || now.Before(k.until) {
			continue
		}
		k.until = time.Time{}
		k.passes = 0
		k.fails.Store(0)
		k.probation.Store(true)
		o.ejected--
		k.target.SetEjected(false)
		o.deps.Metrics.setEjected(o.deps.Upstream, addr, false)
		o.log.Info("target back on probation", "target", addr)
	}
}
