package balancer

import (
	"fmt"
	"math/rand/v2"
	"sync/atomic"
)

// Policy names accepted in configuration.
const (
	RoundRobin   = "round_robin"
	LeastRequest = "least_request"
	PeakEWMA     = "peak_ewma"
)

// Policies lists the accepted policy names, for validation messages.
var Policies = []string{RoundRobin, LeastRequest, PeakEWMA}

// picker chooses one of the usable targets; usable never returns an empty slice.
type picker interface {
	pick(usable []*Target) *Target
}

func newPicker(policy string) (picker, error) {
	switch policy {
	case RoundRobin, "":
		return &roundRobin{}, nil
	case LeastRequest:
		return p2c{cost: func(t *Target) float64 { return float64(t.InFlight()) }}, nil
	case PeakEWMA:
		return p2c{cost: ewmaCost}, nil
	}
	return nil, fmt.Errorf("unknown policy %q (want one of %v)", policy, Policies)
}

type roundRobin struct{ next atomic.Uint64 }

func (r *roundRobin) pick(usable []*Target) *Target {
	n := r.next.Add(1) - 1
	return usable[n%uint64(len(usable))]
}

// p2c is "the power of two choices": sample two targets at random and keep
// the cheaper. It avoids the herd that always-pick-the-best causes when every
// gateway sees the same numbers (Mitzenmacher 2001).
type p2c struct{ cost func(*Target) float64 }

func (p p2c) pick(usable []*Target) *Target {
	if len(usable) == 1 {
		return usable[0]
	}
	// Load spreading, not security: the fast non-cryptographic generator.
	i := rand.IntN(len(usable))     //nolint:gosec // G404: see above
	j := rand.IntN(len(usable) - 1) //nolint:gosec // G404: see above
	if j >= i {
		j++
	}
	a, b := usable[i], usable[j]
	if p.cost(b) < p.cost(a) {
		return b
	}
	return a
}

// ewmaCost weighs latency by load, so a fast target that is already busy
// does not win every pick. An untried target costs nothing and gets traffic.
func ewmaCost(t *Target) float64 {
	return float64(t.Latency()) * float64(t.InFlight()+1)
}
