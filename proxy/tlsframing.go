package proxy

import (
	"crypto/tls"
	"net"
	"time"

	"github.com/drawbridge-proxy/drawbridge/pki/handshake"
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

// newHandshakeListener finishes each TLS handshake, bounded by timeout,
// on a goroutine of its own before Accept returns the connection, so a
// slow client never holds up the others. (With a HandshakeObserver, the
// provider's listener does the same and also counts refusals.)
func newHandshakeListener(inner net.Listener, conf *tls.Config, timeout time.Duration) net.Listener {
	return handshake.NewListener(inner, conf, handshake.Options{Timeout: timeout})
}
