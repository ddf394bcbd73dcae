package breaker

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// ErrOpen is returned by Allow when a breaker refuses an attempt: it is
// open, or half-open with all its trial attempts in flight.
var ErrOpen = errors.New("circuit breaker open")

// Target is what a Set gates; the balancer's target satisfies it.
type Target interface {
	Address() string
	SetGated(open bool)
}

// Deps are what a Set is given.
type Deps struct {
	// Logger receives one line per state change. Nil discards them.
	Logger *slog.Logger
	// Metrics records states and transitions. Nil records nothing.
	Metrics *Metrics
	// Upstream and Route label logs and metrics; Route is empty for the
	// upstream's own set.
	Upstream, Route string
	// Gate makes an open breaker gate its Target (SetGated), so that the
	// balancer skips it for every route. A route's own set leaves targets
	// alone and is consulted through Admits instead.
	Gate bool
}

// Set holds one breaker per target address.
type Set struct {
	cfg    Config
	policy Policy
	deps   Deps

	now func() time.Time // the clock; tests set their own

	mu       sync.RWMutex // guards the following fields
	breakers map[string]*Breaker
	closed   bool
}

// NewSet returns the breakers for cfg (already defaulted and validated). It
// returns nil when breakers are disabled; a nil *Set allows everything.
func NewSet(cfg Config, deps Deps) *Set {
	if cfg.Disabled {
		return nil
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	return &Set{cfg: cfg, policy: NewPolicy(cfg.FailureOn), deps: deps, now: time.Now, breakers: map[string]*Breaker{}}
}

// For returns the breaker of t, creating it (closed) on first use. It
// returns nil for a nil or closed Set.
func (s *Set) For(t Target) *Breaker {
	if s == nil {
		return nil
	}
	addr := t.Address()
	s.mu.RLock()
	b, closed := s.breakers[addr], s.closed
	s.mu.RUnlock()
	if b != nil || closed {
		return b
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.breakers[addr]; b != nil || s.closed {
		return b
	}
	b = s.newBreaker(t)
	s.breakers[addr] = b
	return b
}

// Admits reports whether the breaker of addr would consider an attempt:
// false while it is open. Half-open breakers admit (Allow may still refuse
// when the trial attempts are taken).
func (s *Set) Admits(addr string) bool {
	if s == nil {
		return true
	}
	s.mu.RLock()
	b := s.breakers[addr]
	s.mu.RUnlock()
	return b == nil || !b.open.Load()
}

// State returns the state of addr's breaker ("closed" when there is none).
func (s *Set) State(addr string) string {
	if s == nil {
		return stateClosed.String()
	}
	s.mu.RLock()
	b := s.breakers[addr]
	s.mu.RUnlock()
	if b == nil {
		return stateClosed.String()
	}
	return b.state().String()
}

// Remove forgets the breaker of a target that service discovery removed.
func (s *Set) Remove(addr string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	b := s.breakers[addr]
	delete(s.breakers, addr)
	s.mu.Unlock()
	if b != nil {
		b.stop()
		s.deps.Metrics.forget(s.deps.Upstream, s.deps.Route, addr)
	}
}

// Close stops every pending open-timeout timer. It is idempotent.
func (s *Set) Close() {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.closed = true
	bs := make([]*Breaker, 0, len(s.breakers))
	for _, b := range s.breakers {
		bs = append(bs, b)
	}
	s.mu.Unlock()
	for _, b := range bs {
		b.stop()
	}
}

// Policy is what the set counts as a failure.
func (s *Set) Policy() *Policy {
	if s == nil {
		p := NewPolicy(nil)
		return &p
	}
	return &s.policy
}

// Breaker guards one target.
type Breaker struct {
	policy *Policy
	set    settings
	now    func() time.Time
	open   atomic.Bool // the breaker is open: no attempt may go

	// onChange is called with mu held: only atomics, timers and logging
	// there, never a call back into the breaker.
	onChange func(from, to state)

	mu sync.Mutex // guards m
	m  machine

	timerMu sync.Mutex // guards the following fields
	timer   *time.Timer
	stopped bool
}

func (s *Set) newBreaker(t Target) *Breaker {
	addr, cfg, deps := t.Address(), s.cfg, s.deps
	b := &Breaker{policy: &s.policy, set: newSettings(cfg), now: s.now}
	b.m.buckets = make([]counts, b.set.windowBuckets(cfg.Window))
	b.m.start = b.now()
	log := deps.Logger.With("upstream", deps.Upstream, "target", addr)
	if deps.Route != "" {
		log = log.With("route", deps.Route)
	}
	b.onChange = func(from, to state) {
		open := to == stateOpen
		b.open.Store(open)
		if deps.Gate {
			t.SetGated(open)
		}
		if open {
			b.armTimer(cfg.OpenTimeout)
		}
		deps.Metrics.transition(deps.Upstream, deps.Route, addr, to)
		if open {
			log.Warn("circuit breaker open: target gated", "from", from.String(), "open_timeout", cfg.OpenTimeout.String())
		} else {
			log.Info("circuit breaker "+to.String(), "from", from.String())
		}
	}
	deps.Metrics.transition(deps.Upstream, deps.Route, addr, -1)
	return b
}

// changed tells onChange of a state change, with mu held.
func (b *Breaker) changed(from, to state) {
	if from != to {
		b.onChange(from, to)
	}
}

// Allow asks whether an attempt may go. On nil error, call the Done's
// Report exactly once with how the attempt ended. A nil *Breaker allows
// everything.
func (b *Breaker) Allow() (Done, error) {
	if b == nil {
		return Done{}, nil
	}
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.changed(b.m.advance(&b.set, now))
	if err := b.m.allow(&b.set); err != nil {
		return Done{}, err
	}
	return Done{b: b, gen: b.m.gen, age: b.m.age}, nil
}

// state is the breaker's state now.
func (b *Breaker) state() state {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.changed(b.m.advance(&b.set, now))
	return b.m.state
}

// Done is what an allowed attempt reports its end to. It is a value that
// names the attempt's generation and window bucket, not a closure: an
// attempt allocates nothing. The zero Done (a nil Breaker's) reports
// nothing.
type Done struct {
	b   *Breaker
	gen uint64
	age int64
}

// Report tells the breaker how the attempt ended: a Canceled attempt is
// not counted, a failure by the policy counts against the target.
func (d Done) Report(kind Kind, status int) {
	b := d.b
	if b == nil {
		return
	}
	o := success
	switch {
	case kind == Canceled:
		o = excluded
	case b.policy.Failed(kind, status):
		o = failure
	}
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.changed(b.m.advance(&b.set, now))
	b.changed(b.m.report(&b.set, d.gen, d.age, o, now))
}

// armTimer makes the breaker look at itself when the open timeout is
// over: it moves to half-open lazily, on the next call, and a gated
// target gets no calls.
func (b *Breaker) armTimer(after time.Duration) {
	b.timerMu.Lock()
	defer b.timerMu.Unlock()
	if b.stopped {
		return
	}
	if b.timer != nil {
		b.timer.Stop()
	}
	b.timer = time.AfterFunc(after, func() {
		if b.state() == stateOpen {
			b.armTimer(5 * time.Millisecond) // fired a hair before the expiry
		}
	})
}

func (b *Breaker) stop() {
	b.timerMu.Lock()
	defer b.timerMu.Unlock()
	b.stopped = true
	if b.timer != nil {
		b.timer.Stop()
	}
}
