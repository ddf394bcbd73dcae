package proxy

import (
	"crypto/tls"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"slices"

	"github.com/drawbridge-proxy/drawbridge/pki/identity"
	"github.com/drawbridge-proxy/drawbridge/proxy/listen"
)

// buildUpstreams makes the upstreams of cfg. An upstream whose
// configuration equals one in reuse is taken over as it is, with its
// targets' health, breakers and connection pools.
func (s *Server) buildUpstreams(cfg Config, reuse map[string]*upstream) (map[string]*upstream, error) {
	ups := map[string]*upstream{}
	for _, name := range slices.Sorted(maps.Keys(cfg.Upstreams)) {
		uc := cfg.Upstreams[name]
		if old, ok := reuse[name]; ok && reflect.DeepEqual(old.cfg, uc) {
			ups[name] = old
			continue
		}
		if old, ok := reuse[name]; ok && sameButWeights(old.cfg, uc) {
			old.setWeights(uc) // in place: connections, health and breakers stay
			ups[name] = old
			continue
		}
		up, err := s.newUpstream(uc)
		if err != nil {
			for n, u := range ups {
				if reuse[n] != u {
					u.close()
				}
			}
			return nil, err
		}
		ups[name] = up
	}
	return ups, nil
}

func (s *Server) newUpstream(uc UpstreamConfig) (*upstream, error) {
	var clientTLS *tls.Config
	if usesTLS(uc.Protocol) {
		var err error
		if clientTLS, err = needTLS(s.deps.TLS, "upstreams."+uc.Name).ClientTLS(uc.Name, uc.TLS); err != nil {
			return nil, fmt.Errorf("upstreams.%s.tls: %w", uc.Name, err)
		}
	}
	up, err := newUpstream(uc, clientTLS)
	if err != nil {
		return nil, err
	}
	up.setWeights(uc)
	if err := up.guard(uc, s.gdeps); err != nil {
		return nil, err
	}
	up.cfg, up.metrics, up.tracing = uc, s.metrics, s.tracing
	return up, nil
}

// addListener builds a listener of cfg and adds it to the server; the
// caller holds s.mu or owns s alone (New).
func (s *Server) addListener(cfg Config, lc ListenerConfig, ups map[string]*upstream) error {
	serverTLS, err := s.serverTLS(lc)
	if err != nil {
		return err
	}
	if isStream(lc.Protocol) {
		l, err := s.newStreamListener(lc, serverTLS, ups)
		if err != nil {
			return err
		}
		s.streams = append(s.streams, l)
		return nil
	}
	pol, err := s.httpPolicy(cfg, lc, ups, serverTLS != nil)
	if err != nil {
		return err
	}
	h := &listenerHandler{
		name: lc.Name, inflight: &listen.InFlight{}, metrics: s.metrics, tracing: s.tracing,
		active: s.metrics.inflightGauge(lc.Name), mutual: lc.TLS.Mode == TLSMutual, log: s.log,
	}
	h.policy.Store(pol)
	hl := &httpListener{cfg: lc, handler: h, srv: s.newHTTPServer(lc, h), tls: s.tickets.apply(httpTLS(serverTLS)), fresh: listen.NewFresh()}
	hl.srv.ConnState = hl.fresh.Track
	if lc.HTTP1 == HTTP1Native {
		hl.eng = s.newEngine(lc, h)
	}
	s.listeners = append(s.listeners, hl)
	return nil
}

func (s *Server) serverTLS(lc ListenerConfig) (*tls.Config, error) {
	if lc.TLS.Mode != TLSServer && lc.TLS.Mode != TLSMutual {
		return nil, nil
	}
	c, err := needTLS(s.deps.TLS, "listeners."+lc.Name).ServerTLS(lc)
	if err != nil {
		return nil, fmt.Errorf("listeners.%s.tls: %w", lc.Name, err)
	}
	return c, nil
}

// httpPolicy compiles what an http listener may change on reload: its
// routes, trust in proxies, allow list, HSTS and access log.
func (s *Server) httpPolicy(cfg Config, lc ListenerConfig, ups map[string]*upstream, hasTLS bool) (*listenerPolicy, error) {
	rdeps := routeDeps{log: s.log, errs: s.errs, buffers: s.buffers, secrets: s.deps.Secrets,
		strip: newStripSet(lc.StripHeaders, lc.KeepHeaders), security: securityHeaders(lc.SecurityHeaders)}
	var routes []*route
	for i, rc := range lc.Routes {
		rt, err := newRoute(lc.Name, rc, ups[rc.Upstream], rdeps)
		if err != nil {
			return nil, fmt.Errorf("listeners.%s: %w", lc.Name, err)
		}
		if rc.Static != nil {
			if err := rt.serveStatic(*rc.Static, s.errs, s.metrics, fmt.Sprintf("listeners.%s.routes[%d].static", lc.Name, i)); err != nil {
				return nil, err
			}
		} else {
			// The route's transport: its upstream's attempt loop with the
			// route's breakers and fallback (resilience.go). Instrumentation
			// of the transport wraps this one.
			rt.forward.transport = routeTransportFor(rc, ups, s.gdeps)
		}
		rt.wrapEdge(rc, s.metrics, s.log)
		routes = append(routes, rt)
	}
	p := &listenerPolicy{
		routes: newRouter(routes), unknown: lc.UnknownHostStatus, allow: newAllowList(lc.TLS.Allow),
		access: newAccessLog(cfg.AccessLog, s.access, s.deps.Observer),
	}
	p.redirect = s.redirectHandler(lc)
	for _, c := range lc.TrustedProxies {
		pfx, _ := parsePrefix(c) // validated
		p.trusted = append(p.trusted, pfx)
	}
	if hasTLS && lc.TLS.HSTSMaxAge > 0 {
		p.hsts = fmt.Sprintf("max-age=%d", int64(lc.TLS.HSTSMaxAge.Seconds()))
	} else if hasTLS && lc.SecurityHeaders == SecurityHeadersRecommended {
		p.hsts = hstsRecommended
	}
	return p, nil
}

// listenerPolicy is the part of an http listener a reload replaces: each
// request reads it once, so it finishes on the config it started with.
type listenerPolicy struct {
	routes  *router
	trusted trustedProxies
	unknown int
	allow   *identity.AllowList // the listener's tls.allow; nil: any identity
	hsts    string              // Strict-Transport-Security value; "" for none
	access  *accessLog

	redirect http.Handler // redirect_to_https (redirectlistener.go); nil: the listener routes
}
