package relay

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"time"
)

// errPeeked stops the handshake once the ClientHello has been read.
var errPeeked = errors.New("client hello read")

// peekClientHello reads a TLS ClientHello from c without answering it and
// returns the server name (SNI) it asks for, plus every byte read, which
// must be forwarded to the upstream that terminates TLS. crypto/tls does
// the parsing: a handshake is started on a read-only view of the
// connection and aborted from GetConfigForClient.
func peekClientHello(ctx context.Context, c net.Conn) (serverName string, consumed []byte, err error) {
	var recorded bytes.Buffer
	view := &readOnlyConn{r: io.TeeReader(c, &recorded)}
	var hello *tls.ClientHelloInfo
	hsErr := tls.Server(view, &tls.Config{
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			hello = h
			return nil, errPeeked
		},
	}).HandshakeContext(ctx)
	if hello == nil {
		return "", recorded.Bytes(), hsErr
	}
	return hello.ServerName, recorded.Bytes(), nil
}

// readOnlyConn lets crypto/tls read a ClientHello but never write.
type readOnlyConn struct{ r io.Reader }

func (c *readOnlyConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *readOnlyConn) Write([]byte) (int, error)        { return 0, io.ErrClosedPipe }
func (c *readOnlyConn) Close() error                     { return nil }
func (c *readOnlyConn) LocalAddr() net.Addr              { return nil }
func (c *readOnlyConn) RemoteAddr() net.Addr             { return nil }
func (c *readOnlyConn) SetDeadline(time.Time) error      { return nil }
func (c *readOnlyConn) SetReadDeadline(time.Time) error  { return nil }
func (c *readOnlyConn) SetWriteDeadline(time.Time) error { return nil }

// prefixConn replays bytes already read from a connection before reading on.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite keeps half-close working through the wrapper.
func (c *prefixConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}
