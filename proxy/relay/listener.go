package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/drawbridge-proxy/drawbridge/pki/identity"
)

// Protocols of relayed listeners and upstreams, as configured and logged.
const (
	ProtocolTCP      = "tcp"      // bytes as they come; a listener may terminate TLS or route on the SNI
	ProtocolTLS      = "tls"      // upstreams only: TLS toward the target
	ProtocolPostgres = "postgres" // PostgreSQL's startup negotiation on the listener, SSLRequest and TLS toward the target
)

// Config is one relaying listener, compiled by the gateway from its
// listener configuration (which it has defaulted and validated).
type Config struct {
	Name     string // the listener's name, in logs, metrics and spans
	Protocol string // ProtocolTCP or ProtocolPostgres
	// TLS terminates TLS on client connections with this config (for
	// postgres: after an SSLRequest, or a direct TLS ClientHello). Nil: no
	// TLS termination; a postgres listener then answers an SSLRequest 'N'.
	TLS *tls.Config
	// Passthrough (tcp without TLS only) reads the server name from the
	// client's ClientHello to route on and relays the TLS bytes untouched.
	Passthrough bool
	// Allow admits client identities after the TLS handshake; nil: any.
	Allow *identity.AllowList
	// Handshake bounds the opening: TLS handshake, ClientHello or
	// PostgreSQL startup. Idle ends a connection after no byte either way
	// for that long; MaxLifetime ends it after that long in all (zero: never).
	Handshake, Idle, MaxLifetime time.Duration
}

// Route sends connections to an upstream.
type Route struct {
	Name string // as logged
	// Hosts are the TLS server names it takes: an exact name, or
	// "*.example.com" for one label. None: the route for any other name.
	Hosts    []string
	Upstream Upstream
}

// Upstream is where a route's connections go: the gateway's upstream picks
// a target that is healthy and whose breaker admits it, dials it (with
// Dialer) and moves on to another target on a connect failure, within its
// retry budget.
type Upstream interface {
	// Name is the upstream's name, as logged.
	Name() string
	// DialStream returns a connection ready to relay to (TLS and the
	// SSLRequest done, as the upstream's protocol asks) and the target's
	// address; ctx ends with the listener's stop.
	DialStream(ctx context.Context) (conn net.Conn, target string, err error)
}

// Buffers lends the copy buffers of the relays.
type Buffers interface {
	Get() []byte
	Put([]byte)
}

// Metrics counts what the relay decides by itself.
type Metrics interface {
	// AuthzDenied counts a client identity refused by Config.Allow;
	// reason is identity_not_allowed or no_identity.
	AuthzDenied(listener, reason string)
}

// HandshakeObserver hears of failed TLS handshakes with clients.
type HandshakeObserver interface {
	// HandshakeFailed is called once per failed server handshake.
	HandshakeFailed(listener string, remote net.Addr, err error)
}

// Deps is what a listener takes from the gateway. Buffers and Metrics are
// required; the others may be nil.
type Deps struct {
	Access   *slog.Logger      // one "connection" line per connection; nil: none
	Buffers  Buffers           // copy buffers, one per direction of a relay
	Metrics  Metrics           // authorization refusals
	Observer HandshakeObserver // nil: failures show in the access log only
	Tracer   trace.Tracer      // a span per connection; nil: none
}

// Listener relays the connections of one tcp or postgres listener.
type Listener struct {
	cfg      Config
	deps     Deps
	routes   atomic.Pointer[[]*route] // swapped by SetRoutes; a connection keeps the route it picked
	postgres bool

	wg       sync.WaitGroup // one per connection; Add only from Serve
	served   chan struct{}  // closed when Serve returns, so wg.Wait cannot race wg.Go
	mu       sync.Mutex     // guards conns, pairs and draining
	conns    map[net.Conn]struct{}
	pairs    map[*pair]struct{}
	draining bool // drain began: a relay that starts now starts draining
}

type route struct {
	name     string
	sni      []string // lower case; "*.x" wildcards; empty: default route
	upstream Upstream
}

// New makes a listener of cfg with its first routes. Serve it once.
func New(cfg Config, routes []Route, deps Deps) *Listener {
	l := &Listener{cfg: cfg, deps: deps, postgres: cfg.Protocol == ProtocolPostgres,
		conns: map[net.Conn]struct{}{}, served: make(chan struct{})}
	l.SetRoutes(routes)
	return l
}

// SetRoutes replaces the routes; connections already relayed keep theirs.
func (l *Listener) SetRoutes(routes []Route) {
	compiled := make([]*route, 0, len(routes))
	for _, rc := range routes {
		r := &route{name: rc.Name, upstream: rc.Upstream}
		for _, h := range rc.Hosts {
			r.sni = append(r.sni, strings.ToLower(strings.TrimSuffix(h, ".")))
		}
		compiled = append(compiled, r)
	}
	l.routes.Store(&compiled)
}

// route picks the route for a TLS server name: exact, then one-label
// wildcard, then the route without names.
func (l *Listener) route(sni string) *route {
	sni = strings.ToLower(strings.TrimSuffix(sni, "."))
	var wildcard, fallback *route
	for _, r := range *l.routes.Load() {
		if len(r.sni) == 0 && fallback == nil {
			fallback = r
		}
		for _, name := range r.sni {
			switch {
			case name == sni && sni != "":
				return r
			case strings.HasPrefix(name, "*.") && wildcard == nil:
				if i := strings.IndexByte(sni, '.'); i > 0 && sni[i+1:] == name[2:] {
					wildcard = r
				}
			}
		}
	}
	if wildcard != nil {
		return wildcard
	}
	return fallback
}

// Serve accepts on ln and relays each connection until ln is closed (nil)
// or Accept fails (the error); when stop ends, every relay ends at once.
// Call it once.
func (l *Listener) Serve(stop context.Context, ln net.Listener) error {
	defer close(l.served)
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		l.track(c, true)
		l.wg.Go(func() {
			defer l.track(c, false)
			defer c.Close()
			l.handle(stop, c)
		})
	}
}

func (l *Listener) track(c net.Conn, add bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if add {
		l.conns[c] = struct{}{}
	} else {
		delete(l.conns, c)
	}
}

// Drain waits for relays to finish until ctx ends; close the socket Serve
// accepts on first. PostgreSQL sessions are ended at their next
// transaction boundary (at once when idle: a pooled connection usually
// is); other relays run until they end by themselves, and Close cuts
// whatever is left when the grace is over.
func (l *Listener) Drain(ctx context.Context) {
	l.mu.Lock()
	l.draining = true
	pairs := make([]*pair, 0, len(l.pairs))
	for p := range l.pairs {
		pairs = append(pairs, p)
	}
	l.mu.Unlock()
	for _, p := range pairs {
		p.drain()
	}
	done := make(chan struct{})
	go func() { <-l.served; l.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// startPair registers p for the drain; true if the drain has already begun.
func (l *Listener) startPair(p *pair) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pairs == nil {
		l.pairs = make(map[*pair]struct{})
	}
	l.pairs[p] = struct{}{}
	return l.draining
}

func (l *Listener) endPair(p *pair) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.pairs, p)
}

// Close cuts every connection left (after the grace period) and waits for
// Serve and the relays to return.
func (l *Listener) Close() {
	l.mu.Lock()
	for c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
	<-l.served
	l.wg.Wait()
}
