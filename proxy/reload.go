package proxy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"time"

	"github.com/drawbridge-proxy/drawbridge/proxy/relay"
)

// ErrStopping refuses a reload once the server has begun to shut down.
var ErrStopping = errors.New("the server is shutting down")

// Reload applies cfg while traffic flows. It validates cfg and builds
// everything new first; on any error nothing changes and the running
// configuration keeps serving. Then it swaps, without dropping anything:
//
//   - a listener whose socket settings (address, protocol, tls, timeouts,
//     limits) are unchanged keeps its socket and connections and gets the
//     new routes: a request in flight finishes on the routes it started
//     with, a WebSocket or relayed TCP connection stays open;
//   - an upstream whose configuration is unchanged is kept with its
//     targets' health, breakers and connection pools;
//   - a new listener (or one moved to a new address) is bound before the
//     swap; a removed one stops accepting and drains for shutdown_grace.
//
// Changing the socket settings of a listener while keeping its address
// needs a restart: the old socket holds the address.
func (s *Server) Reload(cfg Config) error {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return ErrStopping
	}
	plan, err := s.planLocked(cfg)
	if err != nil {
		return err
	}
	old := s.upstreams()
	ups, err := s.buildUpstreams(cfg, old)
	if err != nil {
		return err
	}
	if err := s.buildPlanLocked(cfg, plan, ups); err != nil {
		for name, u := range ups {
			if old[name] != u {
				u.close()
			}
		}
		return err
	}
	s.commitLocked(cfg, plan, ups, old)
	return nil
}

// reloadPlan says what happens to each listener.
type reloadPlan struct {
	keepHTTP    []*httpListener
	keepStream  []*streamListener
	removeHTTP  []*httpListener
	removeStrm  []*streamListener
	add         []ListenerConfig
	newPolicies []*listenerPolicy
	newRoutes   [][]relay.Route
	added       *Server // scratch server holding the new listeners until commit
}

// socketSettings are what a listener cannot change without a new socket.
func socketSettings(l ListenerConfig) ListenerConfig {
	return ListenerConfig{Name: l.Name, Address: l.Address, Protocol: l.Protocol, TLS: l.TLS, Timeouts: l.Timeouts, Limits: l.Limits}
}

// keepListener says whether a running listener of config old stays as it
// is under cfg (false: it is removed, or replaced on another address), and
// refuses a change of its socket settings on the same address.
func keepListener(old ListenerConfig, cfg Config) (bool, error) {
	nl, ok := cfg.Listeners[old.Name]
	switch {
	case ok && reflect.DeepEqual(socketSettings(nl), socketSettings(old)):
		return true, nil
	case ok && nl.Address == old.Address:
		return false, fmt.Errorf("listeners.%s: changing the protocol, tls, timeouts or limits of a listener on the same address needs a restart", old.Name)
	}
	return false, nil
}

func (s *Server) planLocked(cfg Config) (*reloadPlan, error) {
	p := &reloadPlan{}
	var errs []error
	held := map[string]string{} // address -> listener kept or removed-but-draining that holds it
	for _, l := range s.listeners {
		keep, err := keepListener(l.cfg, cfg)
		switch {
		case err != nil:
			errs = append(errs, err)
		case keep:
			p.keepHTTP = append(p.keepHTTP, l)
		default:
			p.removeHTTP = append(p.removeHTTP, l)
		}
		held[l.cfg.Address] = l.cfg.Name
	}
	for _, l := range s.streams {
		keep, err := keepListener(l.cfg, cfg)
		switch {
		case err != nil:
			errs = append(errs, err)
		case keep:
			p.keepStream = append(p.keepStream, l)
		default:
			p.removeStrm = append(p.removeStrm, l)
		}
		held[l.cfg.Address] = l.cfg.Name
	}
	kept := map[string]bool{}
	for _, l := range p.keepHTTP {
		kept[l.cfg.Name] = true
	}
	for _, l := range p.keepStream {
		kept[l.cfg.Name] = true
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Listeners)) {
		if kept[name] {
			continue
		}
		nl := cfg.Listeners[name]
		if other, busy := held[nl.Address]; busy && !isWildcardPort(nl.Address) {
			errs = append(errs, fmt.Errorf("listeners.%s.address: %s is still held by listener %q until it drains; restart to move it", name, nl.Address, other))
			continue
		}
		p.add = append(p.add, nl)
	}
	return p, errors.Join(errs...)
}

// isWildcardPort reports an address with port 0, which binds anew each time.
func isWildcardPort(addr string) bool {
	return len(addr) >= 2 && addr[len(addr)-2:] == ":0"
}

// buildPlanLocked compiles the new policies and routes of kept listeners
// and builds and binds the added ones, all before anything is swapped.
func (s *Server) buildPlanLocked(cfg Config, p *reloadPlan, ups map[string]*upstream) error {
	for _, l := range p.keepHTTP {
		pol, err := s.httpPolicy(cfg, cfg.Listeners[l.cfg.Name], ups, l.tls != nil)
		if err != nil {
			return err
		}
		p.newPolicies = append(p.newPolicies, pol)
	}
	for _, l := range p.keepStream {
		p.newRoutes = append(p.newRoutes, streamRoutes(cfg.Listeners[l.cfg.Name], ups))
	}
	// New listeners are built on a scratch server sharing this one's
	// dependencies, then moved over at commit.
	p.added = &Server{deps: s.deps, log: s.log, access: s.access, metrics: s.metrics, tracing: s.tracing,
		gdeps: s.gdeps, errs: s.errs, buffers: s.buffers, sbuffers: s.sbuffers, observer: s.observer,
		hardStop: s.hardStop}
	for _, lc := range p.add {
		if err := p.added.addListener(cfg, lc, ups); err != nil {
			return err
		}
	}
	for _, l := range p.added.listeners {
		if err := s.bindHTTP(l); err != nil {
			p.added.closeListenersLocked()
			return err
		}
	}
	for _, l := range p.added.streams {
		if err := s.bindStream(l); err != nil {
			p.added.closeListenersLocked()
			return err
		}
	}
	return nil
}

// commitLocked swaps everything in: nothing here can fail.
func (s *Server) commitLocked(cfg Config, p *reloadPlan, ups, old map[string]*upstream) {
	s.ups.Store(&ups)
	// A kept listener's cfg stays as it is: its socket settings did not
	// change, and what did (routes, policy) is read through the pointers.
	for i, l := range p.keepHTTP {
		l.handler.policy.Store(p.newPolicies[i])
	}
	for i, l := range p.keepStream {
		l.relays.SetRoutes(p.newRoutes[i])
	}
	s.listeners = append(p.keepHTTP, p.added.listeners...)
	s.streams = append(p.keepStream, p.added.streams...)
	s.cfg = cfg
	if s.running {
		for _, l := range p.added.listeners {
			s.serveHTTP(l)
		}
		for _, l := range p.added.streams {
			s.serveStream(l)
		}
		for name, u := range ups {
			if old[name] != u {
				u.startLoops(s.loopsCtx)
			}
		}
	}
	var retired []*upstream
	for name, u := range old {
		if ups[name] != u {
			retired = append(retired, u)
		}
	}
	s.retire(cfg.ShutdownGrace, p.removeHTTP, p.removeStrm, retired)
	s.log.Info("configuration reloaded", "listeners", len(cfg.Listeners), "upstreams", len(cfg.Upstreams),
		"listeners_added", len(p.add), "listeners_removed", len(p.removeHTTP)+len(p.removeStrm),
		"upstreams_replaced", len(retired))
}

// retire drains removed listeners and, once their requests are done, stops
// replaced upstreams' background loops and closes their idle connections.
// Requests still running on them finish: they hold their own references.
func (s *Server) retire(grace time.Duration, hs []*httpListener, ss []*streamListener, ups []*upstream) {
	if len(hs)+len(ss)+len(ups) == 0 {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		for _, l := range hs {
			l.drain(ctx)
			l.close()
		}
		for _, l := range ss {
			l.drain(ctx)
			l.closeAll()
		}
		for _, u := range ups {
			u.stopLoops()
			u.close()
		}
	}()
}
