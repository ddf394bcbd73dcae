package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/drawbridge-proxy/drawbridge/health"
	"github.com/drawbridge-proxy/drawbridge/proxy/balancer"
	"github.com/drawbridge-proxy/drawbridge/proxy/breaker"
	"github.com/drawbridge-proxy/drawbridge/proxy/discovery"
	"github.com/drawbridge-proxy/drawbridge/proxy/retry"
)

// guards is what keeps an upstream's failures from reaching clients: active
// checks, outlier detection, breakers, the retry budget and service
// discovery. The upstream owns one; every part may be absent.
type guards struct {
	log      *slog.Logger
	metrics  *resilienceMetrics
	breakers *breaker.Set       // the upstream's own; nil when disabled
	policy   *breaker.Policy    // what fails, for breakers and outlier detection
	outlier  *health.Outlier    // nil when disabled
	checker  *health.Checker    // nil without active checks (or admission, with discovery)
	watcher  *discovery.Watcher // nil when no target is a followed name
	optional bool

	tracked atomic.Pointer[map[*balancer.Target]*health.Tracked]

	mu         sync.Mutex              // guards the following fields and target set changes
	routeSets  map[string]*breaker.Set // routes' own breakers, keyed by route and override; told about removed targets
	discovered bool                    // discovery has delivered a first set
}

// resilienceDeps are what the server hands every upstream.
type resilienceDeps struct {
	log      *slog.Logger
	metrics  *resilienceMetrics
	resolver discovery.Resolver
}

// guard builds the upstream's guards from its config and starts tracking
// its static targets. Nothing runs until run.
func (u *upstream) guard(cfg UpstreamConfig, deps resilienceDeps) error {
	g := &guards{log: deps.log.With("upstream", u.name), metrics: deps.metrics, optional: cfg.Optional}
	g.tracked.Store(&map[*balancer.Target]*health.Tracked{})
	hdeps := health.Deps{Logger: deps.log, Metrics: deps.metrics.health, Upstream: u.name}
	g.breakers = breaker.NewSet(cfg.Breaker, breaker.Deps{
		Logger: deps.log, Metrics: deps.metrics.breaker, Upstream: u.name, Gate: true,
	})
	g.policy = g.breakers.Policy()
	if cfg.Breaker.Disabled {
		p := breaker.NewPolicy(cfg.Breaker.FailureOn)
		g.policy = &p
	}
	g.outlier = health.NewOutlier(cfg.Outlier, hdeps)
	b := cfg.Retries.Budget
	u.loop.Budget = retry.NewBudget(b.Ratio, b.MinPerSecond, b.Window, nil)
	dialer := &net.Dialer{Timeout: cfg.Timeouts.Dial}
	follow := !cfg.Discovery.Disabled && discovery.HasNames(cfg.Targets)
	if follow {
		u.verifyNameForIPs(cfg) // before the probes copy the TLS configuration
	}
	switch {
	case cfg.Health.Enabled():
		probe, err := health.NewProbe(cfg.Health, health.ProbeEnv{
			Transport: u.transport, Scheme: u.scheme, TLS: u.clientTLS(), Dialer: dialer,
		})
		if err != nil {
			return fmt.Errorf("upstream %s: %w", u.name, err)
		}
		g.checker = health.NewChecker(cfg.Health, probe, hdeps)
	case follow:
		// New addresses join only once they accept a connection.
		probe, err := health.NewProbe(health.CheckConfig{Type: health.TypeTCP}, health.ProbeEnv{Dialer: dialer})
		if err != nil {
			return err
		}
		g.checker = health.NewAdmission(probe, hdeps)
	}
	u.guards = g
	if follow {
		g.watcher = discovery.New(cfg.Discovery, cfg.Targets, u.setAddresses, discovery.Deps{
			Resolver: deps.resolver, Logger: deps.log, Metrics: deps.metrics.discovery, Upstream: u.name,
			Sources: func(m map[string][]string) { u.sources.Store(&m) },
		})
		u.pool.SetTargets(nil) // discovery fills the pool
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, t := range u.pool.Targets() {
		u.joinLocked(t, true)
	}
	return nil
}

// clientTLS is the TLS client configuration of the upstream's traffic,
// which checks use too: the transport's (https) or the relay's (tls, postgres).
func (u *upstream) clientTLS() *tls.Config {
	if u.tlsConf != nil {
		return u.tlsConf
	}
	return u.transport.TLSClientConfig
}

// verifyNameForIPs keeps certificate verification on the name when
// discovery turns the one DNS name of an upstream that originates TLS into
// IP targets.
func (u *upstream) verifyNameForIPs(cfg UpstreamConfig) {
	if u.scheme != "https" && u.protocol != ProtocolTLS && u.protocol != ProtocolPostgres {
		return
	}
	var hosts []string
	for _, t := range cfg.Targets {
		host, _, _ := net.SplitHostPort(t)
		if net.ParseIP(host) == nil && !slices.Contains(hosts, host) {
			hosts = append(hosts, host)
		}
	}
	if len(hosts) != 1 {
		return // several names: certificates must carry the targets' IPs
	}
	named := func(conf *tls.Config) *tls.Config {
		if conf == nil {
			conf = &tls.Config{MinVersion: tls.VersionTLS12}
		} else {
			conf = conf.Clone()
		}
		if conf.ServerName == "" {
			conf.ServerName = hosts[0]
		}
		return conf
	}
	if u.scheme == "https" {
		u.transport.TLSClientConfig = named(u.transport.TLSClientConfig)
		u.native = newNative(cfg, u.transport.TLSClientConfig)
	}
	if u.tlsConf != nil {
		u.tlsConf = named(u.tlsConf)
	}
}

// routeBreakers returns the breakers a route uses: its own when it
// overrides the upstream's settings, else the upstream's.
func (u *upstream) routeBreakers(route string, override *breaker.Config, deps resilienceDeps) *breaker.Set {
	if override == nil {
		return u.guards.breakers
	}
	// A reload rebuilds every route but keeps an unchanged upstream: the
	// route's breakers are kept too, with their state, unless its override
	// changed. Without the key each reload would add a set to the upstream.
	key := fmt.Sprintf("%s\x00%+v", route, *override)
	g := u.guards
	g.mu.Lock()
	defer g.mu.Unlock()
	if s, ok := g.routeSets[key]; ok {
		return s
	}
	s := breaker.NewSet(*override, breaker.Deps{
		Logger: deps.log, Metrics: deps.metrics.breaker, Upstream: u.name, Route: route,
	})
	if g.routeSets == nil {
		g.routeSets = map[string]*breaker.Set{}
	}
	g.routeSets[key] = s
	return s
}

// joinLocked starts watching a new target; healthy says whether it takes
// traffic before its first check passes.
func (u *upstream) joinLocked(t *balancer.Target, healthy bool) {
	g := u.guards
	if g.checker != nil {
		g.checker.Add(t, healthy)
	}
	g.breakers.For(t)
	if k := g.outlier.Track(t); k != nil {
		m := maps.Clone(*g.tracked.Load())
		m[t] = k
		g.tracked.Store(&m)
	}
}

// leaveLocked stops watching a removed target.
func (u *upstream) leaveLocked(t *balancer.Target) {
	g := u.guards
	t.SetDraining(true)
	if g.checker != nil {
		g.checker.Remove(t.Addr)
	}
	g.outlier.Remove(t.Addr)
	g.breakers.Remove(t.Addr)
	for _, s := range g.routeSets {
		s.Remove(t.Addr)
	}
	m := maps.Clone(*g.tracked.Load())
	delete(m, t)
	g.tracked.Store(&m)
}

// setAddresses makes the pool hold exactly addrs (discovery's update).
// Kept addresses keep their state; removed ones drain (attempts in flight
// finish, no new picks); new ones join once a health check passes, except
// in the very first set, which is used at once.
func (u *upstream) setAddresses(addrs []string) {
	g := u.guards
	g.mu.Lock()
	defer g.mu.Unlock()
	first := !g.discovered
	g.discovered = true
	old := map[string]*balancer.Target{}
	for _, t := range u.pool.Targets() {
		old[t.Addr] = t
	}
	next := make([]*balancer.Target, 0, len(addrs))
	for _, a := range addrs {
		if t, ok := old[a]; ok {
			next = append(next, t)
			delete(old, a)
			continue
		}
		t := balancer.NewWeightedTarget(a, u.weightFor(a))
		u.joinLocked(t, first)
		next = append(next, t)
	}
	for _, t := range old {
		u.leaveLocked(t)
	}
	u.pool.SetTargets(next)
}

// Report tells outlier detection how an attempt on t ended.
func (u *upstream) Report(t *balancer.Target, kind breaker.Kind, status int) {
	if kind == breaker.Canceled {
		return
	}
	if k := (*u.guards.tracked.Load())[t]; k != nil {
		k.Outcome(u.guards.policy.Failed(kind, status))
	}
}

// run runs the upstream's background loops until ctx ends and they have
// all returned, then stops the breakers' timers.
func (u *upstream) run(ctx context.Context) {
	g := u.guards
	var wg sync.WaitGroup
	if g.checker != nil {
		wg.Go(func() { _ = g.checker.Run(ctx) })
	}
	if g.outlier != nil {
		wg.Go(func() { _ = g.outlier.Run(ctx) })
	}
	if g.watcher != nil {
		wg.Go(func() { _ = g.watcher.Run(ctx) })
	}
	<-ctx.Done()
	wg.Wait()
	g.breakers.Close()
	g.mu.Lock()
	sets := slices.Collect(maps.Values(g.routeSets))
	g.mu.Unlock()
	for _, s := range sets {
		s.Close()
	}
}

// ready returns nil when the upstream has a target that can take traffic
// now, else an error saying what each target lacks.
func (u *upstream) ready() error {
	targets := u.pool.Targets()
	if len(targets) == 0 {
		return errors.New("no targets (service discovery has not resolved any address yet)")
	}
	var why []string
	for _, t := range targets {
		if t.Available() {
			return nil
		}
		var s []string
		if !t.Healthy() {
			s = append(s, "unhealthy")
		}
		if t.Ejected() {
			s = append(s, "ejected")
		}
		if t.Gated() {
			s = append(s, "breaker open")
		}
		if t.Draining() {
			s = append(s, "draining")
		}
		why = append(why, t.Addr+" "+strings.Join(s, "+"))
	}
	return fmt.Errorf("no available target: %s", strings.Join(why, ", "))
}

func newResilienceDeps(deps Deps, log *slog.Logger) (resilienceDeps, error) {
	m, err := newResilienceMetrics(deps.Registerer)
	if err != nil {
		return resilienceDeps{}, fmt.Errorf("registering metrics: %w", err)
	}
	return resilienceDeps{log: log, metrics: m, resolver: deps.Resolver}, nil
}

// routeTransportFor wires a route to its upstream's attempt loop, its
// breakers and its fallback.
func routeTransportFor(rc RouteConfig, ups map[string]*upstream, deps resilienceDeps) *routeTransport {
	up := ups[rc.Upstream]
	rt := &routeTransport{route: rc.Name, up: up, breakers: up.routeBreakers(rc.Name, rc.Breaker, deps), metrics: deps.metrics}
	if rc.Fallback.set() {
		fb := rc.Fallback
		rt.fallback = &fb
		rt.fbUp = ups[fb.Upstream] // nil for a static response
	}
	return rt
}

// RequiredUpstreams names the upstreams the gateway's readiness depends
// on: every one not marked optional.
func (s *Server) RequiredUpstreams() []string {
	cfg := s.config()
	var names []string
	for _, name := range slices.Sorted(maps.Keys(cfg.Upstreams)) {
		if !cfg.Upstreams[name].Optional {
			names = append(names, name)
		}
	}
	return names
}

// UpstreamReady returns nil when the named upstream has a target that can
// take traffic, else the reason it has none.
func (s *Server) UpstreamReady(name string) error {
	u, ok := s.upstreams()[name]
	if !ok {
		return fmt.Errorf("unknown upstream %q", name)
	}
	return u.ready()
}
