package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/drawbridge-proxy/drawbridge/proxy/balancer"
	"github.com/drawbridge-proxy/drawbridge/proxy/pgwire"
)

// dialStream connects to a target of the upstream for a relayed
// connection: connect failures move on to another target, up to
// retries.attempts and within the retry budget; then TLS (tls) or
// SSLRequest and TLS (postgres) toward the target. It never falls back to
// plain text. Targets are picked, and dials reported, like HTTP attempts:
// unhealthy, ejected and breaker-gated targets are never dialled.
func (u *upstream) dialStream(ctx context.Context) (net.Conn, string, error) {
	var last error
	g := u.guards
	g.budget.request()
	var triedBuf [4]*balancer.Target
	tried := triedBuf[:0]
	for attempt := 1; attempt <= u.retries.Attempts; attempt++ {
		if attempt > 1 && !g.budget.withdraw() {
			inc(g.metrics.exhausted, u.name)
			break
		}
		target, done := u.pick(g.breakers, tried)
		if target == nil {
			if last != nil {
				break
			}
			inc(g.metrics.noTarget, u.name)
			return nil, "", ErrNoTarget
		}
		if attempt > 1 {
			inc(g.metrics.retries, u.name)
		}
		start := time.Now()
		end := target.Begin()
		conn, err := u.dialTarget(ctx, target.Addr)
		end(time.Since(start))
		kind := dialOutcome(ctx, err)
		done(kind, 0)
		u.reportOutcome(target, kind, 0)
		if err == nil {
			return conn, target.Addr, nil
		}
		last = fmt.Errorf("%s: %w", target.Addr, err)
		if !isConnectFailure(err) || ctx.Err() != nil {
			break
		}
		tried = append(tried, target)
	}
	return nil, "", last
}

func (u *upstream) dialTarget(ctx context.Context, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: u.dialTimeout, KeepAlive: 30 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	switch u.protocol {
	case ProtocolTLS:
		return u.clientHandshake(ctx, conn, addr)
	case ProtocolPostgres:
		_ = conn.SetDeadline(time.Now().Add(u.tlsTimeout))
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
		return u.clientHandshake(ctx, conn, addr)
	}
	return conn, nil
}

func (u *upstream) clientHandshake(ctx context.Context, conn net.Conn, addr string) (net.Conn, error) {
	if u.tlsConf == nil {
		conn.Close()
		return nil, errors.New("no TLS configuration for this upstream")
	}
	conf := u.tlsConf
	if conf.ServerName == "" {
		conf = conf.Clone()
		host, _, _ := net.SplitHostPort(addr)
		conf.ServerName = host
	}
	tc := tls.Client(conn, conf)
	hctx, cancel := context.WithTimeout(ctx, u.tlsTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	return tc, nil
}
