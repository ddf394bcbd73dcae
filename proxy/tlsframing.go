package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"
)

// framingTLSListener puts the framing check on HTTP/1 over TLS. It needs
// connections whose handshake has finished, to know the ALPN protocol: an
// h2 connection is handed on as the *tls.Conn http.Server needs for
// HTTP/2; an HTTP/1 one is wrapped in a framingConn reading the plaintext.
// http.Server then sees no *tls.Conn, so the handler takes the connection
// state from the framingConn (connTLS).
type framingTLSListener struct {
	net.Listener
	maxHead int
}

func (l *framingTLSListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc, ok := c.(*tls.Conn)
	if !ok {
		return c, nil
	}
	st := tc.ConnectionState()
	if !st.HandshakeComplete || st.NegotiatedProtocol == "h2" {
		return c, nil
	}
	fc := newFramingConn(tc, l.maxHead)
	fc.tls = &st
	return fc, nil
}

// handshakeListener finishes each TLS handshake, bounded by timeout, on
// a goroutine of its own before Accept returns the connection, so a slow
// client never holds up the others. (With a HandshakeObserver, the
// provider's listener does the same and also counts refusals.)
type handshakeListener struct {
	inner   net.Listener
	conf    *tls.Config
	timeout time.Duration
	ready   chan net.Conn
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	failOnce sync.Once
	err      error         // the inner listener's terminal error
	done     chan struct{} // closed once err is set
	closing  sync.Once
}

func newHandshakeListener(inner net.Listener, conf *tls.Config, timeout time.Duration) *handshakeListener {
	ctx, cancel := context.WithCancel(context.Background())
	l := &handshakeListener{inner: inner, conf: conf, timeout: timeout, ready: make(chan net.Conn),
		ctx: ctx, cancel: cancel, done: make(chan struct{})}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

func (l *handshakeListener) acceptLoop() {
	defer l.wg.Done()
	for {
		c, err := l.inner.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && l.ctx.Err() == nil {
				continue
			}
			l.fail(err)
			return
		}
		l.wg.Add(1)
		go l.handshake(c)
	}
}

func (l *handshakeListener) handshake(c net.Conn) {
	defer l.wg.Done()
	tc := tls.Server(c, l.conf)
	ctx, cancel := context.WithTimeout(l.ctx, l.timeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		_ = c.Close()
		return
	}
	select {
	case l.ready <- tc:
	case <-l.ctx.Done():
		_ = tc.Close()
	}
}

func (l *handshakeListener) fail(err error) {
	l.failOnce.Do(func() { l.err = err; close(l.done) })
}

// Accept returns the next connection with a finished handshake.
func (l *handshakeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.done:
		return nil, l.err
	}
}

// Close stops accepting, ends pending handshakes and waits for them;
// idempotent.
func (l *handshakeListener) Close() error {
	var err error
	l.closing.Do(func() {
		l.cancel()
		err = l.inner.Close()
		l.wg.Wait()
		l.fail(net.ErrClosed)
	})
	return err
}

func (l *handshakeListener) Addr() net.Addr { return l.inner.Addr() }
