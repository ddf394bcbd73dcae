package balancer

import (
	"fmt"
	"math/rand/v2"
	"sync"
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

// roundRobin cycles through equal targets with one atomic counter, and
// through weighted ones with nginx's smooth weighted round robin, which
// spreads a heavy target's picks between the others' (a, a, b, a, a
// rather than a, a, a, a, b) at the cost of a short lock.
type roundRobin struct {
	next atomic.Uint64
	mu   sync.Mutex // guards every Target.swrr of the pool
}

func (r *roundRobin) pick(usable []*Target) *Target {
	if uniform(usable) {
		n := r.next.Add(1) - 1
		return usable[n%uint64(len(usable))]
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var best *Target
	var total int64
	for _, t := range usable {
		w := int64(t.Weight())
		t.swrr += w
		total += w
		if best == nil || t.swrr > best.swrr {
			best = t
		}
	}
	best.swrr -= total
	return best
}

// uniform reports whether every target has the same weight: then the
// policies run unweighted, on their allocation-free paths.
func uniform(ts []*Target) bool {
	for _, t := range ts[1:] {
		if t.Weight() != ts[0].Weight() {
			return false
		}
	}
	return true
}

// p2c is "the power of two choices": sample two targets at random and keep
// the cheaper. It avoids the herd that always-pick-the-best causes when every
// gateway sees the same numbers (Mitzenmacher 2001).
//
// With unequal weights two samples cannot honour a 90/10 split (with two
// targets both are always compared), so the pick is instead a random draw
// in proportion to weight / (cost + 1), as Envoy's weighted least request
// does: on idle targets the split is the weights', and load or latency
// shifts it away from the busy or slow one.
type p2c struct{ cost func(*Target) float64 }

func (p p2c) pick(usable []*Target) *Target {
	if len(usable) == 1 {
		return usable[0]
	}
	if !uniform(usable) {
		return p.weighted(usable)
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

// weighted draws a target with probability proportional to its weight
// scaled down by its cost relative to the cheapest usable target.
func (p p2c) weighted(usable []*Target) *Target {
	costs := make([]float64, len(usable))
	low := -1.0
	for i, t := range usable {
		costs[i] = p.cost(t)
		if low < 0 || costs[i] < low {
			low = costs[i]
		}
	}
	shares := make([]float64, len(usable))
	var sum float64
	for i, t := range usable {
		// Relative cost: 1 for the cheapest, so an idle pool splits by weight.
		rel := 1.0
		if low > 0 {
			rel = costs[i] / low
		} else if costs[i] > 0 {
			rel = costs[i] + 1
		}
		shares[i] = float64(t.Weight()) / rel
		sum += shares[i]
	}
	x := rand.Float64() * sum //nolint:gosec // G404: load spreading
	for i, s := range shares {
		if x < s {
			return usable[i]
		}
		x -= s
	}
	return usable[len(usable)-1]
}

// ewmaCost weighs latency by load, so a fast target that is already busy
// does not win every pick. An untried target costs nothing and gets traffic.
func ewmaCost(t *Target) float64 {
	return float64(t.Latency()) * float64(t.InFlight()+1)
}
