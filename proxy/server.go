package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/drawbridge-proxy/drawbridge/proxy/engine"
	"github.com/drawbridge-proxy/drawbridge/proxy/listen"

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
	// Observer sees every finished HTTP request (the status page's golden
	// metrics). Nil: none.
	Observer Observer
}

// Server runs every listener of a Config, and applies new configs with
// Reload while it runs.
type Server struct {
	deps     Deps
	log      *slog.Logger
	access   *slog.Logger
	metrics  *metrics // nil: no metrics
	tracing  *tracing // nil: no spans
	gdeps    resilienceDeps
	errs     *errorWriter
	buffers  *bufferPool       // ReverseProxy copy buffers
	sbuffers *bufferPool       // relay buffers
	observer HandshakeObserver // nil: the TLS provider does not observe handshakes
	tickets  *ticketRing       // session ticket keys of every TLS listener
	ready    atomic.Bool

	// ups is the current upstream set; requests read it without a lock,
	// Reload swaps it.
	ups atomic.Pointer[map[string]*upstream]

	mu        sync.Mutex // guards the following fields
	cfg       Config
	listeners []*httpListener
	streams   []*streamListener
	running   bool            // Run has started serving
	loopsCtx  context.Context // background loops of upstreams run under it once Run starts
	stopping  bool            // shutdown has begun: Reload is refused

	// hardStop ends every request still running when the grace period is
	// over; upgraded connections (WebSockets) end with it.
	hardStop context.Context
	abort    context.CancelFunc

	serving  sync.WaitGroup // one per serving listener
	serveErr chan error     // a listener that stopped on its own

	bindOnce sync.Once
	bindErr  error
}

type httpListener struct {
	cfg     ListenerConfig
	srv     *http.Server   // HTTP/2, and HTTP/1 with the std engine
	eng     *engine.Server // the native HTTP/1 engine; nil with std
	handler *listenerHandler
	ln      net.Listener
	tls     *tls.Config // nil for plain text
	fresh   *listen.Fresh
	closing atomic.Bool // closed on purpose (reload or shutdown): Serve's error is not a failure
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
	s := &Server{deps: deps, log: log, access: deps.AccessLog, errs: &errorWriter{log: log},
		buffers: newBufferPool(32 << 10), sbuffers: newBufferPool(128 << 10), serveErr: make(chan error, 1)}
	if s.access == nil {
		s.access = log
	}
	s.ups.Store(&map[string]*upstream{})
	s.hardStop, s.abort = context.WithCancel(context.Background())
	var err error
	if s.gdeps, err = newResilienceDeps(deps, log); err != nil {
		return nil, err
	}
	if s.metrics, err = newMetrics(deps.Registerer, s); err != nil {
		return nil, fmt.Errorf("registering metrics: %w", err)
	}
	s.errs.metrics = s.metrics
	s.tickets = newTicketRing(nil)
	s.tracing = newTracing(deps.Tracing)
	s.observer, _ = deps.TLS.(HandshakeObserver)

	ups, err := s.buildUpstreams(cfg, nil)
	if err != nil {
		return nil, err
	}
	s.ups.Store(&ups)
	s.cfg = cfg
	for _, name := range slices.Sorted(maps.Keys(cfg.Listeners)) {
		if err := s.addListener(cfg, cfg.Listeners[name], ups); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// upstreams is the current upstream set.
func (s *Server) upstreams() map[string]*upstream { return *s.ups.Load() }

// config is the current configuration.
func (s *Server) config() Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
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
			ctx = withStreamBudget(ctx, lc.Limits.MaxStreamsPerSecond)
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
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, l := range s.listeners {
			if err := s.bindHTTP(l); err != nil {
				s.closeListenersLocked()
				s.bindErr = err
				return
			}
		}
		for _, l := range s.streams {
			if err := s.bindStream(l); err != nil {
				s.closeListenersLocked()
				s.bindErr = err
				return
			}
		}
	})
	return s.bindErr
}

func (s *Server) bindHTTP(l *httpListener) error {
	// The std engine's plain listeners get the framing check on the wire;
	// the native engine refuses ambiguous framing itself.
	ln, err := bindLimited(l.cfg, l.tls == nil && l.eng == nil, s.metrics.listenerConns(l.cfg.Name))
	if err != nil {
		return err
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
	case l.tls != nil && l.eng != nil:
		l.ln = tls.NewListener(ln, l.tls) // the native engine handshakes on each connection's goroutine
	case l.tls != nil:
		l.ln = newHandshakeListener(ln, l.tls, l.cfg.Timeouts.Handshake)
	}
	if l.tls != nil && l.eng == nil { // the std engine's framing check of HTTP/1 over TLS (tlsframing.go)
		l.ln = &framingTLSListener{Listener: l.ln, maxHead: int(l.cfg.Limits.MaxHeaderBytes) + 4096}
	}
	return nil
}

func (s *Server) bindStream(l *streamListener) error {
	ln, err := bindLimited(l.cfg, false, s.metrics.listenerConns(l.cfg.Name))
	if err != nil {
		return err
	}
	l.ln = ln
	return nil
}

func bindLimited(cfg ListenerConfig, framing bool, conns *connMetrics) (net.Listener, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("listener %s: %w", cfg.Name, err)
	}
	ln = listen.Limit(ln, cfg.Limits.MaxConnections, conns)
	if framing {
		ln = &framingListener{Listener: ln, maxHead: int(cfg.Limits.MaxHeaderBytes) + 4096}
	}
	return ln, nil
}

func (s *Server) closeListenersLocked() {
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
	s.mu.Lock()
	defer s.mu.Unlock()
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
// after a clean drain, or the error of a listener that failed.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Bind(); err != nil {
		return err
	}
	loops, stopLoops := context.WithCancel(context.Background())
	s.mu.Lock()
	s.running, s.loopsCtx = true, loops
	for _, l := range s.listeners {
		s.serveHTTP(l)
	}
	for _, l := range s.streams {
		s.serveStream(l)
	}
	for _, u := range s.upstreams() {
		u.startLoops(loops)
	}
	s.mu.Unlock()
	s.ready.Store(true)

	var err error
	select {
	case <-ctx.Done():
	case err = <-s.serveErr:
	}
	s.shutdown()
	s.serving.Wait()
	// Health checks, outlier detection and discovery outlive the drain.
	stopLoops()
	for _, u := range s.upstreams() {
		u.stopLoops()
	}
	return err
}

// serveHTTP starts serving l; the caller holds s.mu.
func (s *Server) serveHTTP(l *httpListener) {
	s.log.Info("listening", "listener", l.cfg.Name, "address", l.ln.Addr().String(), "protocol", l.cfg.Protocol)
	s.serving.Go(func() {
		var err error
		if l.eng != nil {
			err = l.serveNative()
		} else {
			err = l.srv.Serve(l.ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) && !l.closing.Load() {
			s.failed(fmt.Errorf("listener %s: %w", l.cfg.Name, err))
		}
	})
}

// serveStream starts serving l; the caller holds s.mu.
func (s *Server) serveStream(l *streamListener) {
	s.log.Info("listening", "listener", l.cfg.Name, "address", l.ln.Addr().String(), "protocol", l.cfg.Protocol)
	s.serving.Go(func() {
		if err := l.serve(s.hardStop); err != nil {
			s.failed(fmt.Errorf("listener %s: %w", l.cfg.Name, err))
		}
	})
}

// failed reports a listener that stopped by itself; Run then shuts down.
func (s *Server) failed(err error) {
	select {
	case s.serveErr <- err:
	default:
	}
}

func (s *Server) shutdown() {
	s.ready.Store(false)
	s.mu.Lock()
	s.stopping = true
	grace := s.cfg.ShutdownGrace
	listeners, streams := slices.Clone(s.listeners), slices.Clone(s.streams)
	s.mu.Unlock()
	s.log.Info("draining", "grace", grace.String())
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	var wg sync.WaitGroup
	for _, l := range listeners {
		wg.Go(func() { l.drain(ctx) })
	}
	for _, l := range streams {
		wg.Go(func() { l.drain(ctx) })
	}
	wg.Wait()
	if ctx.Err() != nil {
		s.log.Warn("grace period over; closing what is left", "grace", grace.String())
	}
	s.abort()
	for _, l := range listeners {
		l.close()
	}
	for _, l := range streams {
		l.closeAll()
	}
	for _, u := range s.upstreams() {
		u.close()
	}
	s.log.Info("stopped")
}

// drain stops accepting and waits until ctx ends for requests in flight,
// upgraded connections included.
func (l *httpListener) drain(ctx context.Context) {
	l.closing.Store(true)
	// Shutdown waits for ordinary requests; upgraded connections are
	// tracked by the handler's in-flight group.
	done := make(chan struct{})
	go func() { _ = l.srv.Shutdown(ctx); close(done) }()
	if l.eng != nil {
		_ = l.ln.Close() // the native accept loop's; srv has only its queue
		_ = l.eng.Shutdown(ctx)
	}
	l.fresh.CloseUntil(done)
	l.handler.inflight.Wait(ctx)
}

// close ends every connection of l now.
func (l *httpListener) close() {
	_ = l.srv.Close()
	if l.eng != nil {
		_ = l.ln.Close()
		l.eng.Close()
	}
}
