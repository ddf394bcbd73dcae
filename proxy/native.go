package proxy

import (
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/drawbridge-proxy/drawbridge/pki/handshake"
	"github.com/drawbridge-proxy/drawbridge/proxy/engine"
)

// newEngine builds the native HTTP/1.1 engine of a listener; it feeds the
// same handler as net/http's HTTP/2 server.
func (s *Server) newEngine(lc ListenerConfig, h *listenerHandler) *engine.Server {
	log := s.log.With("listener", lc.Name)
	return engine.New(engine.Config{
		Handler:           h,
		ReadHeaderTimeout: lc.Timeouts.ReadHeader,
		ReadTimeout:       lc.Timeouts.Read,
		WriteTimeout:      lc.Timeouts.Write,
		IdleTimeout:       lc.Timeouts.Idle,
		MaxHeaderBytes:    int(lc.Limits.MaxHeaderBytes),
		BaseContext:       s.hardStop,
		RequestID:         newRequestID,
		OnRefuse: func(remote string, status int, reason string) {
			if ok, suppressed := h.refusals.Allow(reason); ok {
				log.Info("request refused: malformed HTTP/1 message", "remote", remote, "status", status,
					"reason", reason, suppressed)
			}
		},
	})
}

// serveNative accepts l's connections for the native engine. TLS
// connections that negotiated h2 go to net/http's server through h2.
func (l *httpListener) serveNative() error {
	var h2 *connQueue
	if l.tls != nil {
		h2 = newConnQueue(l.ln.Addr())
		go func() { _ = l.srv.Serve(h2) }()
		defer h2.Close()
	}
	var delay time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if l.closing.Load() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() { // EMFILE and kin: back off as net/http does
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		go l.serveConn(c, h2)
	}
}

func (l *httpListener) serveConn(c net.Conn, h2 *connQueue) {
	if tc, ok := c.(*tls.Conn); ok {
		if !tc.ConnectionState().HandshakeComplete && handshake.Serve(tc, l.cfg.Timeouts.Handshake) != nil {
			_ = c.Close()
			return
		}
		if tc.ConnectionState().NegotiatedProtocol == "h2" && h2 != nil {
			if !h2.push(c) {
				_ = c.Close()
			}
			return
		}
	}
	l.eng.ServeConn(c)
}

// connQueue is a net.Listener whose connections are pushed to it: how
// HTTP/2 connections accepted by the native engine's loop reach net/http.
type connQueue struct {
	addr  net.Addr
	conns chan net.Conn
	once  sync.Once
	done  chan struct{}
}

func newConnQueue(addr net.Addr) *connQueue {
	return &connQueue{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (q *connQueue) push(c net.Conn) bool {
	select {
	case q.conns <- c:
		return true
	case <-q.done:
		return false
	}
}

func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.conns:
		return c, nil
	case <-q.done:
		return nil, net.ErrClosed
	}
}

func (q *connQueue) Close() error {
	q.once.Do(func() { close(q.done) })
	return nil
}

func (q *connQueue) Addr() net.Addr { return q.addr }
