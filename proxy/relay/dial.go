package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/drawbridge-proxy/drawbridge/proxy/pgwire"
)

// Dialer opens a relayed connection to one target of an upstream: TCP,
// then TLS (ProtocolTLS) or an SSLRequest and TLS (ProtocolPostgres). It
// never falls back to plain text.
type Dialer struct {
	Protocol string // ProtocolTCP, ProtocolTLS or ProtocolPostgres
	// TLS is the client config toward tls and postgres targets; its empty
	// ServerName means the target's host. Nil fails those dials.
	TLS        *tls.Config
	Timeout    time.Duration // the TCP connect
	TLSTimeout time.Duration // the SSLRequest's answer, and the TLS handshake
}

// Dial connects to addr (host:port).
func (d Dialer) Dial(ctx context.Context, addr string) (net.Conn, error) {
	nd := net.Dialer{Timeout: d.Timeout, KeepAlive: 30 * time.Second}
	conn, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	switch d.Protocol {
	case ProtocolTLS:
		return d.clientHandshake(ctx, conn, addr)
	case ProtocolPostgres:
		_ = conn.SetDeadline(time.Now().Add(d.TLSTimeout))
		if _, err := conn.Write(pgwire.SSLRequest()); err != nil {
			conn.Close()
			return nil, fmt.Errorf("sending SSLRequest: %w", err)
		}
		var answer [1]byte
		if _, err := conn.Read(answer[:]); err != nil {
			conn.Close()
			return nil, fmt.Errorf("reading the SSLRequest answer: %w", err)
		}
		if answer[0] != 'S' {
			conn.Close()
			return nil, errors.New("the PostgreSQL server refused TLS (answered the SSLRequest with " + string(answer[:]) + "); drawbridge never relays a database connection in plain text")
		}
		_ = conn.SetDeadline(time.Time{})
		return d.clientHandshake(ctx, conn, addr)
	}
	return conn, nil
}

func (d Dialer) clientHandshake(ctx context.Context, conn net.Conn, addr string) (net.Conn, error) {
	if d.TLS == nil {
		conn.Close()
		return nil, errors.New("no TLS configuration for this upstream")
	}
	conf := d.TLS
	if conf.ServerName == "" {
		conf = conf.Clone()
		host, _, _ := net.SplitHostPort(addr)
		conf.ServerName = host
	}
	tc := tls.Client(conn, conf)
	hctx, cancel := context.WithTimeout(ctx, d.TLSTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	return tc, nil
}
