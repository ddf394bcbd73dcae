package balancer

import (
	"sync/atomic"
)

// Pool is the set of targets of one upstream and the policy that picks among them.
type Pool struct {
	targets atomic.Pointer[[]*Target]
	picker  picker
}

// NewPool returns a pool over targets that picks with the named policy
// (empty means round robin).
func NewPool(policy string, targets []*Target) (*Pool, error) {
	p, err := newPicker(policy)
	if err != nil {
		return nil, err
	}
	pool := &Pool{picker: p}
	pool.SetTargets(targets)
	return pool, nil
}

// Targets returns the current targets. The slice must not be modified.
func (p *Pool) Targets() []*Target { return *p.targets.Load() }

// SetTargets replaces the target set, for service discovery. Attempts in
// flight keep the *Target they picked.
func (p *Pool) SetTargets(targets []*Target) {
	cp := append([]*Target(nil), targets...)
	p.targets.Store(&cp)
}

// Pick returns an available target, preferring one other than avoid (the
// target a failed attempt just used). It returns nil when no target is available.
func (p *Pool) Pick(avoid *Target) *Target {
	all := p.Targets()
	// Fast path: the common case of every target being available needs no allocation.
	if avoid == nil && allAvailable(all) {
		if len(all) == 0 {
			return nil
		}
		return p.picker.pick(all)
	}
	usable := make([]*Target, 0, len(all))
	for _, t := range all {
		if t.Available() && t != avoid {
			usable = append(usable, t)
		}
	}
	if len(usable) == 0 {
		if avoid != nil && avoid.Available() {
			return avoid
		}
		return nil
	}
	return p.picker.pick(usable)
}

// PickWhere returns an available target for which keep is true, or nil
// when there is none. Retries and per-route circuit breakers use it to
// leave out targets that already failed or that their breaker refuses.
func (p *Pool) PickWhere(keep func(*Target) bool) *Target {
	all := p.Targets()
	n := 0
	for _, t := range all {
		if t.Available() && keep(t) {
			n++
		}
	}
	switch {
	case n == 0:
		return nil
	case n == len(all):
		return p.picker.pick(all) // the common case allocates nothing
	}
	usable := make([]*Target, 0, n)
	for _, t := range all {
		if t.Available() && keep(t) {
			usable = append(usable, t)
		}
	}
	if len(usable) == 0 { // a target changed state between the two passes
		return nil
	}
	return p.picker.pick(usable)
}

func allAvailable(ts []*Target) bool {
	for _, t := range ts {
		if !t.Available() {
			return false
		}
	}
	return true
}

// AnyAvailable reports whether at least one target can take an attempt.
func (p *Pool) AnyAvailable() bool {
	for _, t := range p.Targets() {
		if t.Available() {
			return true
		}
	}
	return false
}
