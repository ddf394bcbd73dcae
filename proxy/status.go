package proxy

import (
	"maps"
	"slices"
	"time"
)

// ListenerStatus describes one listener for the status page.
type ListenerStatus struct {
	Name     string
	Address  string // the bound address once bound, else the configured one
	Protocol string
	Routes   []RouteStatus
}

// RouteStatus describes one route.
type RouteStatus struct {
	Name       string
	Hosts      []string
	PathPrefix string
	Upstream   string
}

// UpstreamStatus describes one upstream and its targets' live state.
type UpstreamStatus struct {
	Name     string
	Protocol string
	Balance  string
	Targets  []TargetStatus
}

// TargetStatus is one target's state, read from the balancer's atomics.
type TargetStatus struct {
	Address     string
	Healthy     bool
	Ejected     bool
	BreakerOpen bool
	Draining    bool
	InFlight    int64
	Latency     time.Duration
	// ConsecutiveFailures counts the attempts that failed (an error or a
	// 5xx) since the target last answered well, whatever health checks say.
	ConsecutiveFailures int64
	// LastFailure and LastFailureAt describe the latest failed attempt.
	LastFailure   string
	LastFailureAt time.Time
}

// Listeners describes every listener and its routes, in name order.
func (s *Server) Listeners() []ListenerStatus {
	cfg := s.config()
	out := make([]ListenerStatus, 0, len(cfg.Listeners))
	for _, name := range slices.Sorted(maps.Keys(cfg.Listeners)) {
		lc := cfg.Listeners[name]
		ls := ListenerStatus{Name: lc.Name, Address: lc.Address, Protocol: lc.Protocol}
		if addr := s.Addr(lc.Name); addr != nil {
			ls.Address = addr.String()
		}
		for _, rc := range lc.Routes {
			ls.Routes = append(ls.Routes, RouteStatus{
				Name: rc.Name, Hosts: rc.Match.Hosts, PathPrefix: rc.Match.PathPrefix, Upstream: rc.Upstream,
			})
		}
		out = append(out, ls)
	}
	return out
}

// Upstreams describes every upstream and the current state of its targets, in name order.
func (s *Server) Upstreams() []UpstreamStatus {
	ups := s.upstreams()
	out := make([]UpstreamStatus, 0, len(ups))
	for _, name := range slices.Sorted(maps.Keys(ups)) {
		up := ups[name]
		us := UpstreamStatus{Name: name, Protocol: up.cfg.Protocol, Balance: up.cfg.Balance}
		for _, t := range up.pool.Targets() {
			ts := TargetStatus{
				Address: t.Addr, Healthy: t.Healthy(), Ejected: t.Ejected(), BreakerOpen: t.Gated(),
				Draining: t.Draining(), InFlight: t.InFlight(), Latency: t.Latency(),
			}
			if st := up.lastStats(t.Addr); st != nil {
				ts.ConsecutiveFailures = st.consecutive.Load()
				if f := st.last.Load(); f != nil {
					ts.LastFailure, ts.LastFailureAt = f.reason, f.at
				}
			}
			us.Targets = append(us.Targets, ts)
		}
		out = append(out, us)
	}
	return out
}
