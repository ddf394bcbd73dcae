package proxy

import (
	"fmt"
	"reflect"
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/drawbridge-proxy/drawbridge/proxy/balancer"
	"github.com/drawbridge-proxy/drawbridge/telemetry/configerr"
)

// TargetSpec is one entry of an upstream's targets in YAML: "host:port",
// or {address: host:port, weight: N}.
type TargetSpec struct {
	Address   string
	Weight    int
	hasWeight bool
	problem   string // what was wrong with the entry; reported by Validate under its key path
}

// UnmarshalYAML reads either form. A problem is kept with the entry and
// reported by Validate: a type error here would make the decoder drop the
// entry, and the indexes of the entries after it would be wrong.
func (t *TargetSpec) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		t.Address = n.Value
		return nil
	case yaml.MappingNode:
	default:
		t.problem = `a target is "host:port" or {address: host:port, weight: N}`
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "address":
			t.Address = v.Value
		case "weight":
			if err := v.Decode(&t.Weight); err != nil {
				t.problem = fmt.Sprintf("weight %q is not an integer", v.Value)
			}
			t.hasWeight = true
		default:
			t.problem = fmt.Sprintf("unknown key %q (a target has address and weight)", k.Value)
		}
	}
	return nil
}

// takeSpecs moves TargetSpecs into Targets and Weights (Weights only when
// some entry gave a weight; the others then weigh 1).
func (u *UpstreamConfig) takeSpecs() {
	if len(u.TargetSpecs) == 0 {
		return
	}
	weighted := slices.ContainsFunc(u.TargetSpecs, func(t TargetSpec) bool { return t.hasWeight })
	u.Targets, u.Weights = nil, nil
	for i, t := range u.TargetSpecs {
		if t.problem != "" {
			u.specProblems.Add(fmt.Sprintf("targets[%d]", i), "%s", t.problem)
		}
		u.Targets = append(u.Targets, t.Address)
		if weighted {
			w := t.Weight
			if !t.hasWeight {
				w = 1
			}
			u.Weights = append(u.Weights, w)
		}
	}
	u.TargetSpecs = nil
}

// weightOf is the configured weight of target i.
func (u *UpstreamConfig) weightOf(i int) int {
	if i < len(u.Weights) {
		return u.Weights[i]
	}
	return 1
}

// validateWeights checks Weights against Targets.
func (u *UpstreamConfig) validateWeights(path string, p *configerr.List) {
	p.Nest(path, u.specProblems.Err())
	if len(u.Weights) == 0 {
		return
	}
	if len(u.Weights) != len(u.Targets) {
		p.Add(path+".weights", "has %d weights for %d targets; give one per target", len(u.Weights), len(u.Targets))
		return
	}
	positive := false
	for i, w := range u.Weights {
		if w < 0 || w > balancer.MaxWeight {
			p.Add(fmt.Sprintf("%s.targets[%d].weight", path, i), "must be between 0 and %d, got %d", balancer.MaxWeight, w)
		}
		positive = positive || w > 0
	}
	if !positive {
		p.Add(path+".targets", "every weight is 0, so no request could be served; give one target a weight above 0")
	}
}

// sameButWeights reports whether a and b differ at most in their weights,
// which a reload applies to the running upstream in place.
func sameButWeights(a, b UpstreamConfig) bool {
	a.Weights, b.Weights = nil, nil
	return reflect.DeepEqual(a, b)
}

// setWeights applies cfg's weights to the running targets: by address,
// or, for targets followed by discovery, by the name they resolved from.
func (u *upstream) setWeights(cfg UpstreamConfig) {
	byAddr := map[string]int{}
	for i, t := range cfg.Targets {
		byAddr[t] = cfg.weightOf(i)
	}
	u.weights.Store(&byAddr)
	for _, t := range u.pool.Targets() {
		t.SetWeight(u.weightFor(t.Addr))
	}
}

// weightFor is the weight of addr: its own target's, or that of the name
// discovery resolved it from (the largest, if several names share it).
func (u *upstream) weightFor(addr string) int {
	byAddr := u.weights.Load()
	if byAddr == nil {
		return 1
	}
	if w, ok := (*byAddr)[addr]; ok {
		return w
	}
	src := u.sources.Load()
	if src == nil {
		return 1
	}
	w, found := 0, false
	for target, addrs := range *src {
		if slices.Contains(addrs, addr) {
			w, found = max(w, (*byAddr)[target]), true
		}
	}
	if !found {
		return 1
	}
	return w
}
