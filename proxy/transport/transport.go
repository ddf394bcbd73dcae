package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"
	"time"
)

// Config configures a Transport. Zero values take the defaults given.
type Config struct {
	// DialTimeout bounds the TCP connect. Zero means 5s.
	DialTimeout time.Duration
	// TLSHandshakeTimeout bounds the TLS handshake. Zero means 5s.
	TLSHandshakeTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for the response head once the
	// request is written. Zero means no bound beyond the request's context.
	ResponseHeaderTimeout time.Duration
	// IdleConnTimeout drops pooled connections idle this long. Zero means 90s.
	IdleConnTimeout time.Duration
	// MaxIdlePerHost bounds the pool per address. Zero means 256.
	MaxIdlePerHost int
	// ExpectContinueTimeout bounds the wait for 100 Continue before the body
	// is sent anyway. Zero means 1s.
	ExpectContinueTimeout time.Duration
	// MaxResponseHeaderBytes bounds a response head. Zero means 64 KiB.
	MaxResponseHeaderBytes int
	// Interim, when set, is given each 1xx head other than a 100 Continue
	// the transport waits for itself, when the request's context has no
	// httptrace.ClientTrace with Got1xxResponse: a proxy forwards them
	// without building a trace per request. Nil: they are dropped.
	Interim func(req *http.Request, code int, h http.Header)
	// TLS, when set, makes every connection TLS with this client config
	// (HTTP/1.1 is the only protocol offered). Nil: plain text.
	TLS *tls.Config
}

func (c *Config) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.DialTimeout, 5*time.Second)
	def(&c.TLSHandshakeTimeout, 5*time.Second)
	def(&c.IdleConnTimeout, 90*time.Second)
	def(&c.ExpectContinueTimeout, time.Second)
	if c.MaxIdlePerHost <= 0 {
		c.MaxIdlePerHost = 256
	}
	if c.MaxResponseHeaderBytes <= 0 {
		c.MaxResponseHeaderBytes = 64 << 10
	}
}

// Transport is a synchronous HTTP/1.1 http.RoundTripper with a keep-alive
// pool per address. Requests name their target in URL.Host.
type Transport struct {
	cfg    Config
	dialer net.Dialer
	tls    *tls.Config // cfg.TLS offering http/1.1 only

	mu     sync.Mutex // guards the following fields
	idle   map[string][]*pconn
	closed bool
}

// New returns a Transport for cfg.
func New(cfg Config) *Transport {
	cfg.defaults()
	t := &Transport{cfg: cfg, dialer: net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second},
		idle: map[string][]*pconn{}}
	if cfg.TLS != nil {
		t.tls = cfg.TLS.Clone()
		t.tls.NextProtos = []string{"http/1.1"}
	}
	return t
}

// RoundTrip sends req on a pooled connection to req.URL.Host, or a new one.
// A pooled connection the upstream had closed is replaced once, when
// nothing of the request body was consumed.
//
// The response is the connection's: closing its body (which the caller
// must) hands the connection back to the pool, and the connection
// rebuilds the response and its Header map for its next one; so once the
// body is closed the caller must not use the response. The value slices
// and strings of its Header, and its Trailer map, may be kept.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil || req.URL.Host == "" {
		closeBody(req)
		return nil, errors.New("transport: request has no target address")
	}
	ctx := req.Context()
	trace := httptrace.ContextClientTrace(ctx)
	addr := req.URL.Host
	for try := 0; ; try++ {
		pc, err := t.getConn(ctx, addr, trace)
		if err != nil {
			closeBody(req)
			return nil, err
		}
		resp, stale, err := pc.roundTrip(req, trace)
		if err == nil {
			return resp, nil
		}
		if stale && try == 0 && ctx.Err() == nil {
			continue
		}
		closeBody(req)
		return nil, err
	}
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

// getConn pops the most recently used live idle connection to addr, or
// dials one.
func (t *Transport) getConn(ctx context.Context, addr string, trace *httptrace.ClientTrace) (*pconn, error) {
	if pc := t.popIdle(addr); pc != nil {
		if trace != nil && trace.GotConn != nil {
			trace.GotConn(httptrace.GotConnInfo{Conn: pc.conn, Reused: true, WasIdle: true, IdleTime: time.Since(pc.idleSince)})
		}
		return pc, nil
	}
	pc, err := t.dial(ctx, addr, trace)
	if err != nil {
		return nil, err
	}
	if trace != nil && trace.GotConn != nil {
		trace.GotConn(httptrace.GotConnInfo{Conn: pc.conn})
	}
	return pc, nil
}

func (t *Transport) popIdle(addr string) *pconn {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	stack := t.idle[addr]
	for len(stack) > 0 {
		pc := stack[len(stack)-1]
		stack[len(stack)-1] = nil
		stack = stack[:len(stack)-1]
		if now.Sub(pc.idleSince) < t.cfg.IdleConnTimeout {
			t.idle[addr] = stack
			pc.reused = true
			return pc
		}
		_ = pc.conn.Close()
	}
	delete(t.idle, addr)
	return nil
}

// putIdle pools pc, or closes it when the pool is full or closed.
func (t *Transport) putIdle(pc *pconn) {
	pc.idleSince = time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	stack := t.idle[pc.addr]
	if t.closed || len(stack) >= t.cfg.MaxIdlePerHost {
		_ = pc.conn.Close()
		return
	}
	// Drop the oldest when it has expired: pools of quiet targets shrink
	// without a sweeper goroutine.
	if len(stack) > 0 && pc.idleSince.Sub(stack[0].idleSince) >= t.cfg.IdleConnTimeout {
		_ = stack[0].conn.Close()
		stack = append(stack[:0], stack[1:]...)
	}
	t.idle[pc.addr] = append(stack, pc)
}

func (t *Transport) dial(ctx context.Context, addr string, trace *httptrace.ClientTrace) (*pconn, error) {
	if trace != nil && trace.ConnectStart != nil {
		trace.ConnectStart("tcp", addr)
	}
	c, err := t.dialer.DialContext(ctx, "tcp", addr)
	if trace != nil && trace.ConnectDone != nil {
		trace.ConnectDone("tcp", addr, err)
	}
	if err != nil {
		return nil, err
	}
	pc := newPconn(t, addr, c)
	if t.tls == nil {
		return pc, nil
	}
	conf := t.tls
	if conf.ServerName == "" {
		host, _, _ := net.SplitHostPort(addr)
		conf = conf.Clone()
		conf.ServerName = host
	}
	tc := tls.Client(c, conf)
	if trace != nil && trace.TLSHandshakeStart != nil {
		trace.TLSHandshakeStart()
	}
	hctx, cancel := context.WithTimeout(ctx, t.cfg.TLSHandshakeTimeout)
	err = tc.HandshakeContext(hctx)
	cancel()
	state := tc.ConnectionState()
	if trace != nil && trace.TLSHandshakeDone != nil {
		trace.TLSHandshakeDone(state, err)
	}
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	pc.setConn(tc)
	pc.tls = &state
	return pc, nil
}

// CloseIdleConnections closes every pooled connection.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = map[string][]*pconn{}
	t.mu.Unlock()
	for _, stack := range idle {
		for _, pc := range stack {
			_ = pc.conn.Close()
		}
	}
}

// Close closes the pool: idle connections now, busy ones when their
// exchange ends.
func (t *Transport) Close() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.CloseIdleConnections()
}
