package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/drawbridge-proxy/drawbridge/proxy/discovery"
)

// Deps are what the data plane is given rather than builds.
type Deps struct {
	// Logger receives operational messages. Nil discards them.
	Logger *slog.Logger
	// AccessLog receives one line per request or relayed connection. Nil
	// means Logger.
	AccessLog *slog.Logger
	// TLS supplies certificates and trust for listeners and upstreams that
	// use TLS. Nil: a config that needs TLS is refused by New.
	TLS TLSProvider
	// Secrets resolves request_headers.set_secret references. Nil: a
	// config that uses them is refused by New.
	Secrets SecretSource
	// Registerer receives the metrics of requests, attempts and
	// connections (drawbridge_http_*, drawbridge_upstream_*,
	// drawbridge_listener_*), health checks, breakers, retries, fallbacks
	// and service discovery. Nil: no metrics.
	Registerer prometheus.Registerer
	// Tracing provides a server span per request and a client span per
	// upstream attempt. Nil: no spans, and trace context passes through
	// untouched.
	Tracing trace.TracerProvider
	// Resolver looks up targets given as DNS names. Nil means net.DefaultResolver.
	Resolver discovery.Resolver
}

// Server runs every listener of a Config.
type Server struct {
	cfg       Config
	log       *slog.Logger
	upstreams map[string]*upstream
	listeners []*httpListener
	streams   []*streamListener
	metrics   *metrics          // nil: no metrics
	observer  HandshakeObserver // nil: the TLS provider does not observe handshakes
	ready     atomic.Bool

	// hardStop ends every request still running when the grace period is
	// over; upgraded connections (WebSockets) end with it.
	hardStop context.Context
	abort    context.CancelFunc

	bindOnce sync.Once
	bindErr  error
}

type httpListener struct {
	cfg     ListenerConfig
	srv     *http.Server
	handler *listenerHandler
	ln      net.Listener
	tls     *tls.Config // nil for plain text
	fresh   *freshConns
}

// New builds the data plane of cfg, which it completes with defaults and
// validates. Nothing is bound until Bind or Run.
func New(cfg Config, deps Deps) (*Server, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	accessLogger := deps.AccessLog
	if accessLogger == nil {
		accessLogger = log
	}
	s := &Server{cfg: cfg, log: log, upstreams: map[string]*upstream{}}
	s.hardStop, s.abort = context.WithCancel(context.Background())
	gdeps, err := newResilienceDeps(deps, log)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(deps.Registerer, s)
	if err != nil {
		return nil, fmt.Errorf("registering metrics: %w", err)
	}
	tr := newTracing(deps.Tracing)
	s.metrics = m
	s.observer, _ = deps.TLS.(HandshakeObserver)
	for _, name := range sortedKeys(cfg.Upstreams) {
		uc := cfg.Upstreams[name]
		var clientTLS *tls.Config
		if usesTLS(uc.Protocol) {
			var err error
			if clientTLS, err = needTLS(deps.TLS, "upstreams."+name).ClientTLS(name, uc.TLS); err != nil {
				return nil, fmt.Errorf("upstreams.%s.tls: %w", name, err)
			}
		}
		up, err := newUpstream(uc, clientTLS)
		if err != nil {
			return nil, err
		}
		if err := up.guard(cfg.Upstreams[name], gdeps); err != nil {
			return nil, err
		}
		up.metrics, up.tracing = m, tr
		s.upstreams[name] = up
	}
	errs := &errorWriter{log: log}
	access := newAccessLog(cfg.AccessLog, accessLogger)
	buffers, streamBuffers := newBufferPool(32<<10), newBufferPool(128<<10)
	for _, name := range sortedKeys(cfg.Listeners) {
		lc := cfg.Listeners[name]
		var serverTLS *tls.Config
		if lc.TLS.Mode == TLSServer || lc.TLS.Mode == TLSMutual {
			var err error
			if serverTLS, err = needTLS(deps.TLS, "listeners."+name).ServerTLS(lc); err != nil {
				return nil, fmt.Errorf("listeners.%s.tls: %w", name, err)
			}
		}
		if isStream(lc.Protocol) {
			s.streams = append(s.streams, s.newStreamListener(lc, serverTLS, accessLogger, streamBuffers))
			continue
		}
		var routes []*route
		rdeps := routeDeps{log: log, errs: errs, buffers: buffers, secrets: deps.Secrets}
		for _, rc := range lc.Routes {
			rt, err := newRoute(name, rc, s.upstreams[rc.Upstream], rdeps)
			if err != nil {
				return nil, fmt.Errorf("listeners.%s: %w", name, err)
			}
			// The route's transport: its upstream's attempt loop with the
			// route's breakers and fallback (resilience.go). Instrumentation
			// of the transport wraps this one.
			rt.proxy.Transport = s.routeTransport(rc, gdeps)
			routes = append(routes, rt)
		}
		var trusted trustedProxies
		for _, c := range lc.TrustedProxies {
			p, _ := parsePrefix(c) // validated above
			trusted = append(trusted, p)
		}
		h := &listenerHandler{
			name: name, trusted: trusted, unknown: lc.UnknownHostStatus,
			routes: newRouter(routes), errs: errs, access: access, inflight: &inflightGroup{},
			metrics: m, tracing: tr, active: m.inflightGauge(name),
			mutual: lc.TLS.Mode == TLSMutual, allow: newAllowList(lc.TLS.Allow), log: log,
		}
		if serverTLS != nil && lc.TLS.HSTSMaxAge > 0 {
			h.hsts = fmt.Sprintf("max-age=%d", int64(lc.TLS.HSTSMaxAge.Seconds()))
		}
		hl := &httpListener{cfg: lc, handler: h, srv: s.newHTTPServer(lc, h), tls: httpTLS(serverTLS), fresh: newFreshConns()}
		hl.srv.ConnState = hl.fresh.track
		s.listeners = append(s.listeners, hl)
	}
	return s, nil
}

// missingTLS stands in for an absent TLSProvider and names what needed it.
type missingTLS string

func (m missingTLS) ServerTLS(ListenerConfig) (*tls.Config, error)      { return nil, m.err() }
func (m missingTLS) ClientTLS(string, UpstreamTLS) (*tls.Config, error) { return nil, m.err() }
func (m missingTLS) err() error {
	return fmt.Errorf("%s needs TLS, but this drawbridge has no certificate authority configured (add a pki section)", string(m))
}

func needTLS(p TLSProvider, what string) TLSProvider {
	if p == nil {
		return missingTLS(what)
	}
	return p
}

// httpTLS offers HTTP/2 and HTTP/1.1 over a listener's TLS config, and
// keeps any protocol the provider added (acme-tls/1 for ACME challenges).
func httpTLS(c *tls.Config) *tls.Config {
	if c == nil {
		return nil
	}
	c = c.Clone()
	protos := []string{"h2", "http/1.1"}
	for _, p := range c.NextProtos {
		if !slices.Contains(protos, p) {
			protos = append(protos, p)
		}
	}
	c.NextProtos = protos
	return c
}

func (s *Server) newStreamListener(lc ListenerConfig, serverTLS *tls.Config, access *slog.Logger, buffers *bufferPool) *streamListener {
	if serverTLS != nil && lc.Protocol == ProtocolPostgres {
		serverTLS = serverTLS.Clone()
		serverTLS.NextProtos = []string{"postgresql"} // PostgreSQL 17 direct TLS requires this ALPN
	}
	l := &streamListener{cfg: lc, tls: serverTLS, log: s.log, access: access, buffers: buffers,
		conns: map[net.Conn]struct{}{}, served: make(chan struct{}),
		allow: newAllowList(lc.TLS.Allow), observer: s.observer, metrics: s.metrics}
	for _, rc := range lc.Routes {
		r := &streamRoute{name: rc.Name, upstream: s.upstreams[rc.Upstream]}
		for _, h := range rc.Match.Hosts {
			r.sni = append(r.sni, strings.ToLower(strings.TrimSuffix(h, ".")))
		}
		l.routes = append(l.routes, r)
	}
	return l
}

func (s *Server) newHTTPServer(lc ListenerConfig, h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: lc.Timeouts.ReadHeader,
		ReadTimeout:       lc.Timeouts.Read,
		WriteTimeout:      lc.Timeouts.Write,
		IdleTimeout:       lc.Timeouts.Idle,
		MaxHeaderBytes:    int(lc.Limits.MaxHeaderBytes),
		ErrorLog:          slog.NewLogLogger(s.log.With("listener", lc.Name).Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return s.hardStop },
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if fc, ok := c.(*framingConn); ok {
				return context.WithValue(ctx, framingKey{}, fc)
			}
			return ctx
		},
	}
}

// Bind opens every listener's socket. Run calls it; call it first to learn
// the addresses of ":0" listeners. Binding is all or nothing.
func (s *Server) Bind() error {
	s.bindOnce.Do(func() {
		for _, l := range s.listeners {
			ln, err := bindLimited(l.cfg, l.tls == nil, s.metrics.listenerConns(l.cfg.Name))
			if err != nil {
				s.closeListeners()
				s.bindErr = err
				return
			}
			l.ln = ln
			switch {
			// Request smuggling needs HTTP/1 framing; with TLS the
			// plaintext is inside crypto/tls, whose HTTP/1 parser is
			// Go's own, which drops Content-Length when both are sent.
			case l.tls != nil && s.observer != nil:
				// Handshakes finish before http.Server sees the connection
				// (ALPN included, so HTTP/2 still works); refusals are
				// counted and logged by the provider.
				l.ln = s.observer.TLSListener(l.cfg.Name, ln, l.tls, l.cfg.Timeouts.Handshake)
			case l.tls != nil:
				l.ln = tls.NewListener(ln, l.tls)
			}
		}
		for _, l := range s.streams {
			ln, err := bindLimited(l.cfg, false, s.metrics.listenerConns(l.cfg.Name))
			if err != nil {
				s.closeListeners()
				s.bindErr = err
				return
			}
			l.ln = ln
		}
	})
	return s.bindErr
}

func bindLimited(cfg ListenerConfig, framing bool, conns *connMetrics) (net.Listener, error) {
	ln, err := net.Listen("tcp", cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("listener %s: %w", cfg.Name, err)
	}
	return &limitListener{
		Listener: ln,
		slots:    make(chan struct{}, cfg.Limits.MaxConnections),
		maxHead:  int(cfg.Limits.MaxHeaderBytes) + 4096,
		framing:  framing,
		conns:    conns,
	}, nil
}

func (s *Server) closeListeners() {
	for _, l := range s.listeners {
		if l.ln != nil {
			l.ln.Close()
		}
	}
	for _, l := range s.streams {
		if l.ln != nil {
			l.ln.Close()
		}
	}
}

// Addr returns the bound address of the named listener, or nil.
func (s *Server) Addr(listener string) net.Addr {
	for _, l := range s.listeners {
		if l.cfg.Name == listener && l.ln != nil {
			return l.ln.Addr()
		}
	}
	for _, l := range s.streams {
		if l.cfg.Name == listener && l.ln != nil {
			return l.ln.Addr()
		}
	}
	return nil
}

// Ready reports whether every listener is serving and no shutdown has begun.
func (s *Server) Ready() bool { return s.ready.Load() }

// Run serves until ctx ends, then drains: readiness turns false, listeners
// stop accepting, in-flight requests and upgraded connections get up to
// shutdown_grace to finish, and whatever remains is cut. It returns nil
// after a clean drain.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Bind(); err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, l := range s.listeners {
		g.Go(func() error {
			s.log.Info("listening", "listener", l.cfg.Name, "address", l.ln.Addr().String(), "protocol", l.cfg.Protocol)
			if err := l.srv.Serve(l.ln); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("listener %s: %w", l.cfg.Name, err)
			}
			return nil
		})
	}
	for _, l := range s.streams {
		g.Go(func() error {
			s.log.Info("listening", "listener", l.cfg.Name, "address", l.ln.Addr().String(), "protocol", l.cfg.Protocol)
			if err := l.serve(s.hardStop); err != nil {
				return fmt.Errorf("listener %s: %w", l.cfg.Name, err)
			}
			return nil
		})
	}
	defer s.runUpstreams()()
	s.ready.Store(true)
	g.Go(func() error {
		<-gctx.Done()
		s.shutdown()
		return nil
	})
	return g.Wait()
}

func (s *Server) shutdown() {
	s.ready.Store(false)
	grace := s.cfg.ShutdownGrace
	s.log.Info("draining", "grace", grace.String())
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	var wg sync.WaitGroup
	for _, l := range s.listeners {
		wg.Go(func() {
			// Shutdown waits for ordinary requests; upgraded connections
			// are tracked by the handler's in-flight group.
			done := make(chan struct{})
			go func() { _ = l.srv.Shutdown(ctx); close(done) }()
			l.closeFreshUntil(done)
			l.handler.inflight.wait(ctx)
		})
	}
	for _, l := range s.streams {
		wg.Go(func() { l.drain(ctx) })
	}
	wg.Wait()
	if ctx.Err() != nil {
		s.log.Warn("grace period over; closing what is left", "grace", grace.String())
	}
	s.abort()
	for _, l := range s.listeners {
		_ = l.srv.Close()
	}
	for _, l := range s.streams {
		l.closeAll()
	}
	for _, u := range s.upstreams {
		u.close()
	}
	s.log.Info("stopped")
}

// closeFreshUntil closes connections that never sent a request, again
// and again while Shutdown runs, so one accepted just before the listener
// closed is caught too.
func (l *httpListener) closeFreshUntil(done <-chan struct{}) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		l.fresh.closeAll()
		select {
		case <-done:
			return
		case <-t.C:
		}
	}
}

// inflightGroup counts handlers still running, upgraded connections included.
type inflightGroup struct {
	mu   sync.Mutex    // guards the following fields
	n    int           // handlers running
	idle chan struct{} // closed when n drops to zero
}

func (g *inflightGroup) begin() (done func()) {
	g.mu.Lock()
	if g.n == 0 {
		g.idle = make(chan struct{})
	}
	g.n++
	g.mu.Unlock()
	return func() {
		g.mu.Lock()
		g.n--
		if g.n == 0 {
			close(g.idle)
		}
		g.mu.Unlock()
	}
}

// wait returns when nothing is in flight or ctx ends.
func (g *inflightGroup) wait(ctx context.Context) {
	g.mu.Lock()
	if g.n == 0 {
		g.mu.Unlock()
		return
	}
	idle := g.idle
	g.mu.Unlock()
	select {
	case <-idle:
	case <-ctx.Done():
	}
}

// limitListener bounds open connections and wraps each in a framingConn.
type limitListener struct {
	net.Listener
	slots   chan struct{}
	maxHead int
	framing bool         // wrap each connection in a framingConn (plain HTTP/1)
	conns   *connMetrics // nil: not counted
}

func (l *limitListener) Accept() (net.Conn, error) {
	l.slots <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	l.conns.open()
	sc := &slotConn{Conn: c, release: func() { <-l.slots; l.conns.close() }}
	if !l.framing {
		return sc, nil
	}
	return newFramingConn(sc, l.maxHead), nil
}

type slotConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *slotConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// CloseWrite keeps TCP half-close working through the wrapper.
func (c *slotConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}
