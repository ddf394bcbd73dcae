package health

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/drawbridge-proxy/drawbridge/internal/loop"
)

// Target is what the checker reports its verdicts to; the proxy's balancer
// targets satisfy it.
type Target interface {
	Address() string
	SetHealthy(ok bool)
}

// Deps are what the checker and the outlier detector are given.
type Deps struct {
	// Logger receives one line per change of a target's state. Nil discards them.
	Logger *slog.Logger
	// Metrics records checks, verdicts and ejections. Nil records nothing.
	Metrics *Metrics
	// Upstream names the upstream in logs and metrics.
	Upstream string
	// Now is the clock of the outlier detector. Nil means time.Now.
	Now func() time.Time
}

func (d *Deps) defaults() {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
}

// Checker runs active health checks against a changing set of targets,
// one loop per target, each on its own jittered timer.
type Checker struct {
	cfg       CheckConfig
	probe     Probe
	deps      Deps
	log       *slog.Logger
	admitOnly bool

	mu      sync.Mutex // guards the following fields
	targets map[string]*probed
	ctx     context.Context // Run's context while it runs; nil before and after
	wg      sync.WaitGroup  // the loops
}

// probed is one target's check state. After its loop starts only the loop
// touches the counters.
type probed struct {
	target        Target
	cancel        context.CancelFunc
	healthy       bool
	passes, fails int
}

// NewChecker returns a checker for cfg (defaulted and validated) that
// checks with probe. Nothing runs until Run.
func NewChecker(cfg CheckConfig, probe Probe, deps Deps) *Checker {
	deps.defaults()
	return &Checker{cfg: cfg, probe: probe, deps: deps, targets: map[string]*probed{},
		log: deps.Logger.With("upstream", deps.Upstream)}
}

// NewAdmission returns a checker that only admits new targets: it probes a
// target added as unhealthy until it passes once, then leaves it alone.
// Service discovery uses it when an upstream has no active checks.
func NewAdmission(probe Probe, deps Deps) *Checker {
	cfg := CheckConfig{Type: TypeTCP}
	cfg.UnhealthyInterval = 500 * time.Millisecond
	cfg.Interval = cfg.UnhealthyInterval
	cfg.HealthyThreshold, cfg.UnhealthyThreshold = 1, 1
	cfg.Defaults()
	c := NewChecker(cfg, probe, deps)
	c.admitOnly = true
	return c
}

// Add starts checking t. A target added as healthy is used at once and
// checked after a random part of the jitter; one added as unhealthy is
// checked at once and joins after healthy_threshold passes. Adding an
// address already present does nothing.
func (c *Checker) Add(t Target, healthy bool) {
	addr := t.Address()
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.targets[addr]; ok {
		return
	}
	t.SetHealthy(healthy)
	c.deps.Metrics.setHealthy(c.deps.Upstream, addr, healthy)
	p := &probed{target: t, healthy: healthy}
	c.targets[addr] = p
	if c.ctx != nil {
		c.startLocked(p)
	}
}

// Remove stops checking addr.
func (c *Checker) Remove(addr string) {
	c.mu.Lock()
	p := c.targets[addr]
	delete(c.targets, addr)
	c.mu.Unlock()
	if p == nil {
		return
	}
	if p.cancel != nil {
		p.cancel()
	}
	c.deps.Metrics.forgetChecks(c.deps.Upstream, addr)
}

// Run checks every target until ctx ends, then stops every loop and
// returns once they have all returned.
func (c *Checker) Run(ctx context.Context) error {
	c.mu.Lock()
	c.ctx = ctx
	for _, p := range c.targets {
		c.startLocked(p)
	}
	c.mu.Unlock()
	<-ctx.Done()
	c.mu.Lock()
	c.ctx = nil
	c.mu.Unlock()
	c.wg.Wait()
	return nil
}

func (c *Checker) startLocked(p *probed) {
	if c.admitOnly && p.healthy {
		return
	}
	ctx, cancel := context.WithCancel(c.ctx)
	p.cancel = cancel
	first := time.Duration(0)
	if p.healthy {
		first = c.jitter()
	}
	c.wg.Go(func() { c.loop(ctx, p, first) })
}

func (c *Checker) jitter() time.Duration {
	if c.cfg.Jitter <= 0 {
		return 0
	}
	return rand.N(c.cfg.Jitter + 1) //nolint:gosec // G404: jitter spreads checks in time; it guards nothing

}

// loop checks one target until its context ends (or, for admission, until
// it has joined).
func (c *Checker) loop(ctx context.Context, p *probed, wait time.Duration) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		c.checkOnce(ctx, p)
		if ctx.Err() != nil || (c.admitOnly && p.healthy) {
			return
		}
		next := c.cfg.Interval
		if !p.healthy {
			next = c.cfg.UnhealthyInterval
		}
		timer.Reset(next + c.jitter())
	}
}

// checkOnce runs the probe, recovering from a panic in it (a failed check),
// and applies the rise and fall thresholds.
func (c *Checker) checkOnce(ctx context.Context, p *probed) {
	addr := p.target.Address()
	start := time.Now()
	err := loop.Guard(c.log, "health check panicked", func() error {
		cctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
		defer cancel()
		return c.probe(cctx, addr)
	}, "target", addr)
	if ctx.Err() != nil {
		return // stopped mid-check: not the target's fault
	}
	c.deps.Metrics.checked(c.deps.Upstream, addr, err == nil, time.Since(start))
	if err == nil {
		p.fails = 0
		p.passes++
		if !p.healthy && p.passes >= c.cfg.HealthyThreshold {
			p.healthy = true
			p.target.SetHealthy(true)
			c.deps.Metrics.setHealthy(c.deps.Upstream, addr, true)
			c.log.Info("target healthy", "target", addr, "passes", p.passes)
		}
		return
	}
	p.passes = 0
	p.fails++
	if p.healthy && p.fails >= c.cfg.UnhealthyThreshold {
		p.healthy = false
		p.target.SetHealthy(false)
		c.deps.Metrics.setHealthy(c.deps.Upstream, addr, false)
		c.log.Warn("target unhealthy", "target", addr, "failures", p.fails, "error", err.Error())
	}
}
