package proxy

import (
	"context"
	"crypto/tls"
	"net"

	"go.opentelemetry.io/otel/trace"

	"github.com/drawbridge-proxy/drawbridge/proxy/relay"
)

// streamListener is a tcp or postgres listener: the gateway binds and
// closes its socket, proxy/relay relays its connections.
type streamListener struct {
	cfg    ListenerConfig
	ln     net.Listener // set by bindStream
	relays *relay.Listener
}

func (s *Server) newStreamListener(lc ListenerConfig, serverTLS *tls.Config, ups map[string]*upstream) (*streamListener, error) {
	if serverTLS != nil && lc.Protocol == ProtocolPostgres {
		serverTLS = serverTLS.Clone()
		serverTLS.NextProtos = []string{"postgresql"} // PostgreSQL 17 direct TLS requires this ALPN
	}
	var tracer trace.Tracer
	if s.tracing != nil {
		tracer = s.tracing.tracer
	}
	rc := relay.Config{Name: lc.Name, Protocol: lc.Protocol, TLS: s.tickets.apply(serverTLS),
		Passthrough: lc.TLS.Mode == TLSPassthrough, Allow: newAllowList(lc.TLS.Allow),
		Handshake: lc.Timeouts.Handshake, Idle: lc.Timeouts.Idle, MaxLifetime: lc.Timeouts.MaxLifetime}
	deps := relay.Deps{Access: s.access, Buffers: s.sbuffers, Metrics: relayMetrics{s.metrics},
		Observer: s.observer, Tracer: tracer}
	return &streamListener{cfg: lc, relays: relay.New(rc, streamRoutes(lc, ups), deps)}, nil
}

// streamRoutes compiles a tcp or postgres listener's routes.
func streamRoutes(lc ListenerConfig, ups map[string]*upstream) []relay.Route {
	routes := make([]relay.Route, 0, len(lc.Routes))
	for _, rc := range lc.Routes {
		routes = append(routes, relay.Route{Name: rc.Name, Hosts: rc.Match.Hosts, Upstream: ups[rc.Upstream]})
	}
	return routes
}

// serve relays connections until the socket closes; stop ends every relay.
func (l *streamListener) serve(stop context.Context) error { return l.relays.Serve(stop, l.ln) }

// drain stops accepting and waits for relays to finish until ctx ends.
func (l *streamListener) drain(ctx context.Context) {
	l.ln.Close()
	l.relays.Drain(ctx)
}

// closeAll cuts what is left after the grace period.
func (l *streamListener) closeAll() { l.relays.Close() }

// relayMetrics counts the relays' refusals with the HTTP listeners' ones.
type relayMetrics struct{ m *metrics }

func (r relayMetrics) AuthzDenied(listener, reason string) {
	r.m.authzDenied(listener, labelNone, reason)
}
