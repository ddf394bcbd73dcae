package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/drawbridge-proxy/drawbridge/pki/identity"
	"github.com/drawbridge-proxy/drawbridge/proxy/pgwire"
)

// handle relays one accepted connection and logs it when it is over.
func (l *Listener) handle(stop context.Context, raw net.Conn) {
	rec := &connRecord{start: time.Now(), client: raw.RemoteAddr().String()}
	defer l.logConn(rec)
	defer l.span(rec)()
	client, err := l.accept(raw, rec)
	if err != nil {
		if rec.reason == "" {
			rec.reason = "handshake_failed"
		}
		rec.err = err
		return
	}
	rt := l.route(rec.sni)
	if rt == nil {
		rec.reason, rec.err = "no_route", fmt.Errorf("no route for server name %q", rec.sni)
		return
	}
	rec.route, rec.upstream = rt.name, rt.upstream.Name()
	server, target, err := rt.upstream.DialStream(stop)
	if err != nil {
		rec.reason, rec.err = "upstream_unavailable", err
		if l.postgres {
			_ = pgwire.WriteError(client, &pgwire.Error{Severity: "FATAL", Code: pgwire.CannotConnectNow,
				Message: "drawbridge: no database target is available", Hint: "the database is down or unreachable; retry shortly"})
		}
		return
	}
	rec.target = target
	p := &pair{client: client, server: server, idle: l.cfg.Idle}
	if l.postgres {
		p.pg = newPGSession()
	}
	if l.startPair(p) {
		p.drain() // the drain began while this one was being set up
	}
	defer l.endPair(p)
	p.run(stop, l.cfg.MaxLifetime, l.deps.Buffers)
	rec.reason, rec.up, rec.down = p.reason, p.toServer.Load(), p.toClient.Load()
}

// accept does whatever must happen before bytes can be relayed: the TLS
// handshake, the PostgreSQL negotiation, or reading the SNI to route on.
// It is bounded by Config.Handshake.
func (l *Listener) accept(raw net.Conn, rec *connRecord) (net.Conn, error) {
	_ = raw.SetDeadline(time.Now().Add(l.cfg.Handshake))
	defer func() { _ = raw.SetDeadline(time.Time{}) }()
	if l.postgres {
		return l.negotiatePostgres(raw, rec)
	}
	switch {
	case l.cfg.Passthrough:
		sni, consumed, err := peekClientHello(context.Background(), raw) // bounded by the deadline set above
		if err != nil {
			return nil, fmt.Errorf("reading the TLS ClientHello: %w", err)
		}
		rec.sni = sni
		return &prefixConn{Conn: raw, prefix: consumed}, nil
	case l.cfg.TLS != nil:
		return l.handshake(raw, nil, rec)
	}
	return raw, nil
}

func (l *Listener) handshake(raw net.Conn, prefix []byte, rec *connRecord) (net.Conn, error) {
	under := raw
	if len(prefix) > 0 {
		under = &prefixConn{Conn: raw, prefix: prefix}
	}
	tc := tls.Server(under, l.cfg.TLS)
	// The connection's deadline (Config.Handshake) bounds the handshake.
	if err := tc.HandshakeContext(context.Background()); err != nil {
		if l.deps.Observer != nil {
			l.deps.Observer.HandshakeFailed(l.cfg.Name, raw.RemoteAddr(), err)
		}
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	st := tc.ConnectionState()
	rec.sni, rec.tlsVer = st.ServerName, st.Version
	id, _ := identity.FromConnectionState(st)
	rec.identity = id.String()
	if l.cfg.Allow != nil && !l.cfg.Allow.Allows(id) {
		// The provider refuses these at the handshake; this is the
		// gateway's own check, so a provider that does not still fails closed.
		reason := "identity_not_allowed"
		if id.IsZero() {
			reason = "no_identity"
		}
		l.deps.Metrics.AuthzDenied(l.cfg.Name, reason)
		rec.reason = "authz_denied"
		return nil, fmt.Errorf("client identity %q is not allowed (%s)", rec.identity, reason)
	}
	return tc, nil
}

// negotiatePostgres answers the client's opening as PostgreSQL would:
// SSLRequest gets 'S' and a TLS handshake when the listener has TLS (else
// 'N'), GSSENCRequest gets 'N', a direct TLS ClientHello (PostgreSQL 17,
// ALPN "postgresql") is handshaken at once, and a plain StartupMessage on a
// listener that requires TLS gets a FATAL error message instead of a
// dropped connection.
func (l *Listener) negotiatePostgres(raw net.Conn, rec *connRecord) (net.Conn, error) {
	wantTLS := l.cfg.TLS != nil
	var first [1]byte
	if _, err := raw.Read(first[:]); err != nil {
		return nil, fmt.Errorf("reading the startup packet: %w", err)
	}
	if first[0] == pgwire.TLSRecordHandshake {
		if !wantTLS {
			return nil, errors.New("a direct TLS handshake on a listener without TLS")
		}
		return l.handshake(raw, first[:], rec)
	}
	in := &prefixConn{Conn: raw, prefix: first[:]}
	for {
		msg, err := pgwire.ReadStartup(in)
		if err != nil {
			_ = pgwire.WriteError(raw, &pgwire.Error{Severity: "FATAL", Code: pgwire.ProtocolViolation, Message: "drawbridge: expected a PostgreSQL startup packet"})
			return nil, fmt.Errorf("reading the startup packet: %w", err)
		}
		switch msg.Code {
		case pgwire.SSLRequestCode:
			if !wantTLS {
				if _, err := raw.Write([]byte{'N'}); err != nil {
					return nil, err
				}
				continue
			}
			if _, err := raw.Write([]byte{'S'}); err != nil {
				return nil, err
			}
			return l.handshake(raw, nil, rec)
		case pgwire.GSSENCRequestCode:
			if _, err := raw.Write([]byte{'N'}); err != nil {
				return nil, err
			}
			continue
		}
		if wantTLS {
			_ = pgwire.WriteError(raw, &pgwire.Error{Severity: "FATAL", Code: pgwire.InvalidAuthorizationSpecification,
				Message: "drawbridge: this listener requires TLS (SSL); the connection was not encrypted",
				Hint:    "connect with sslmode=verify-full and the client certificate drawbridge issued"})
			return nil, errors.New("plaintext startup refused: the listener requires TLS")
		}
		// Plain text allowed: the startup packet goes on to the upstream.
		return &prefixConn{Conn: raw, prefix: msg.Raw}, nil
	}
}
