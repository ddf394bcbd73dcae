package proxy

import "time"

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
	out := make([]ListenerStatus, 0, len(s.listeners))
	for _, l := range s.listeners {
		ls := ListenerStatus{Name: l.cfg.Name, Address: l.cfg.Address, Protocol: l.cfg.Protocol}
		if addr := s.Addr(l.cfg.Name); addr != nil {
			ls.Address = addr.String()
		}
		for _, rc := range l.cfg.Routes {
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
	out := make([]UpstreamStatus, 0, len(s.upstreams))
	for _, name := range sortedKeys(s.upstreams) {
		cfg := s.cfg.Upstreams[name]
		us := UpstreamStatus{Name: name, Protocol: cfg.Protocol, Balance: cfg.Balance}
		up := s.upstreams[name]
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
