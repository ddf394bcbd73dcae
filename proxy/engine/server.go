package engine

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/drawbridge-proxy/drawbridge/proxy/http1"
)

// Config configures a Server. Every timeout's zero value is replaced by a
// default: none of them can be turned off.
type Config struct {
	// Handler serves every request. Required. The request it is given,
	// with its URL and Header, is the connection's and is rebuilt for the
	// next request once the handler returns: a handler must not use them
	// (or let another goroutine use them) after it returns; the strings in
	// them it may keep. The request's context is the connection's too
	// (ending when it closes or parks, not when the handler returns), so
	// a handler stops what it registers on it.
	Handler http.Handler
	// ReadHeaderTimeout bounds reading a request head from its first byte
	// (from the accept for the first request). Zero means 10s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included, from its
	// first byte. Zero means 60s.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing a response from the end of its request
	// head; a handler may lift it (SSE, upgrades). Zero means 60s.
	WriteTimeout time.Duration
	// IdleTimeout bounds the wait for the next request on a keep-alive
	// connection. Zero means 120s.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request head (431 past it). Zero means 64 KiB.
	MaxHeaderBytes int
	// MaxRequestsPerConn closes a keep-alive connection after this many
	// requests (nginx's keepalive_requests). Zero means 10000.
	MaxRequestsPerConn int
	// BaseContext is the parent of every connection's request context;
	// ending it cancels them all. Nil means context.Background().
	BaseContext context.Context
	// OnRefuse, when set, is told of every request the strict profile
	// refused, with the status sent and a reason that never quotes the
	// client's bytes.
	OnRefuse func(remoteAddr string, status int, reason string)
	// RequestID, when set, names each refusal: it goes in X-Request-Id and
	// the JSON body, like every other error the gateway answers. It must
	// return [A-Za-z0-9._:-] only.
	RequestID func() string

	// For tests: how long an idle connection waits on its goroutine before
	// it parks (default hotWait), and a hook between that wait and the park.
	hotWait    time.Duration
	beforePark func(*conn)
}

func (c *Config) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.ReadHeaderTimeout, 10*time.Second)
	def(&c.ReadTimeout, 60*time.Second)
	def(&c.WriteTimeout, 60*time.Second)
	def(&c.IdleTimeout, 120*time.Second)
	def(&c.hotWait, hotWait)
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = 64 << 10
	}
	if c.MaxRequestsPerConn <= 0 {
		c.MaxRequestsPerConn = 10000
	}
	if c.BaseContext == nil {
		c.BaseContext = context.Background()
	}
}

// Server serves HTTP/1.x connections handed to ServeConn.
type Server struct {
	cfg      Config
	lim      http1.Limits
	draining atomic.Bool

	mu    sync.Mutex // guards conns
	conns map[*conn]struct{}
}

// New returns a Server for cfg.
func New(cfg Config) *Server {
	cfg.defaults()
	return &Server{cfg: cfg, lim: http1.Limits{MaxHead: cfg.MaxHeaderBytes}, conns: map[*conn]struct{}{}}
}

// ServeConn serves c until it closes, the client or a limit ends it, the
// handler hijacks it, or it goes idle and is parked: a parked connection
// has no goroutine until its next bytes arrive, when the Server starts one
// to serve it further. ServeConn runs on the caller's goroutine; the
// connection is closed when it ends, unless it was hijacked. TLS
// connections must have finished their handshake.
func (s *Server) ServeConn(c net.Conn) {
	cn := newConn(s, c)
	if !s.track(cn) {
		_ = c.Close()
		return
	}
	cn.serve()
}

func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining.Load() {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Shutdown stops taking requests: idle connections close at once (and
// again as others become idle), busy ones close after their response. It
// returns when every connection is gone, or ctx's error when it ends first.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining.Store(true) // under mu: no connection is tracked after this
	s.mu.Unlock()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if s.closeIdle() == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Close closes every connection now.
func (s *Server) Close() {
	s.draining.Store(true)
	for _, c := range s.snapshot() {
		if c.waiter.Unpark() {
			c.closeParked()
			continue
		}
		_ = c.rwc.Close()
	}
}

// closeIdle closes the idle connections and returns how many are left.
func (s *Server) closeIdle() int {
	for _, c := range s.snapshot() {
		switch {
		case c.waiter.Unpark(): // parked: no goroutine will close it, so this one does
			c.closeParked()
		case c.idle.Load():
			_ = c.rwc.Close()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// snapshot lists the tracked connections (closing one untracks it, so
// they are not closed under mu).
func (s *Server) snapshot() []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	all := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		all = append(all, c)
	}
	return all
}
