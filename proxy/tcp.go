package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/drawbridge-proxy/drawbridge/pki/identity"
	"github.com/drawbridge-proxy/drawbridge/proxy/pgwire"
)

// streamListener relays tcp and postgres connections to upstreams.
type streamListener struct {
	cfg      ListenerConfig
	ln       net.Listener
	tls      *tls.Config                    // nil unless the mode is server or mutual
	routes   atomic.Pointer[[]*streamRoute] // swapped by Reload; a connection keeps the route it picked
	log      *slog.Logger
	access   *slog.Logger
	buffers  *bufferPool
	allow    *identity.AllowList // tls.allow; nil: any identity
	observer HandshakeObserver   // nil: failures show in the access log only
	tracing  *tracing            // nil: no connection spans
	metrics  *metrics

	wg       sync.WaitGroup // one per connection; Add only from serve
	served   chan struct{}  // closed when serve returns, so wg.Wait cannot race wg.Go
	mu       sync.Mutex     // guards conns, relays and draining
	conns    map[net.Conn]struct{}
	relays   map[*relay]struct{}
	draining bool // drain began: a relay that starts now starts draining
}

type streamRoute struct {
	name     string
	sni      []string // lower case; "*.x" wildcards; empty: default route
	upstream *upstream
}

// route picks the route for a TLS server name: exact, then one-label
// wildcard, then the route without names.
func (l *streamListener) route(sni string) *streamRoute {
	sni = strings.ToLower(strings.TrimSuffix(sni, "."))
	var wildcard, fallback *streamRoute
	for _, r := range *l.routes.Load() {
		if len(r.sni) == 0 && fallback == nil {
			fallback = r
		}
		for _, name := range r.sni {
			switch {
			case name == sni && sni != "":
				return r
			case strings.HasPrefix(name, "*.") && wildcard == nil:
				if i := strings.IndexByte(sni, '.'); i > 0 && sni[i+1:] == name[2:] {
					wildcard = r
				}
			}
		}
	}
	if wildcard != nil {
		return wildcard
	}
	return fallback
}

// serve accepts until the listener closes; stop ends every relay.
func (l *streamListener) serve(stop context.Context) error {
	defer close(l.served)
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		l.track(c, true)
		l.wg.Go(func() {
			defer l.track(c, false)
			defer c.Close()
			l.handle(stop, c)
		})
	}
}

func (l *streamListener) track(c net.Conn, add bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if add {
		l.conns[c] = struct{}{}
	} else {
		delete(l.conns, c)
	}
}

// drain stops accepting and waits for relays to finish until ctx ends.
// PostgreSQL sessions are ended at their next transaction boundary (at once
// when idle: a pooled connection usually is); other relays run until they end
// by themselves, and closeAll cuts whatever is left when the grace is over.
func (l *streamListener) drain(ctx context.Context) {
	l.ln.Close()
	l.mu.Lock()
	l.draining = true
	relays := make([]*relay, 0, len(l.relays))
	for r := range l.relays {
		relays = append(relays, r)
	}
	l.mu.Unlock()
	for _, r := range relays {
		r.drain()
	}
	done := make(chan struct{})
	go func() { <-l.served; l.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// startRelay registers r for the drain; true if the drain has already begun.
func (l *streamListener) startRelay(r *relay) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.relays == nil {
		l.relays = make(map[*relay]struct{})
	}
	l.relays[r] = struct{}{}
	return l.draining
}

func (l *streamListener) endRelay(r *relay) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.relays, r)
}

// closeAll cuts what is left after the grace period.
func (l *streamListener) closeAll() {
	l.mu.Lock()
	for c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
	<-l.served
	l.wg.Wait()
}

// connRecord is what one connection's access log line says.
type connRecord struct {
	start    time.Time
	client   string
	sni      string
	identity string
	tlsVer   uint16
	route    string
	upstream string
	target   string
	reason   string
	err      error
	up, down int64
}

func (l *streamListener) handle(stop context.Context, raw net.Conn) {
	rec := &connRecord{start: time.Now(), client: raw.RemoteAddr().String()}
	defer l.logConn(rec)
	defer l.tracing.connSpan(l.cfg, rec)()
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
	rec.route, rec.upstream = rt.name, rt.upstream.name
	server, target, err := rt.upstream.dialStream(stop)
	if err != nil {
		rec.reason, rec.err = "upstream_unavailable", err
		if l.cfg.Protocol == ProtocolPostgres {
			_ = pgwire.WriteError(client, &pgwire.Error{Severity: "FATAL", Code: pgwire.CannotConnectNow,
				Message: "drawbridge: no database target is available", Hint: "the database is down or unreachable; retry shortly"})
		}
		return
	}
	rec.target = target
	r := &relay{client: client, server: server, idle: l.cfg.Timeouts.Idle}
	if l.cfg.Protocol == ProtocolPostgres {
		r.pg = newPGSession()
	}
	if l.startRelay(r) {
		r.drain() // the drain began while this one was being set up
	}
	defer l.endRelay(r)
	r.run(stop, l.cfg.Timeouts.MaxLifetime, l.buffers)
	rec.reason, rec.up, rec.down = r.reason, r.toServer.Load(), r.toClient.Load()
}

// accept does whatever must happen before bytes can be relayed: the TLS
// handshake, the PostgreSQL negotiation, or reading the SNI to route on.
// It is bounded by timeouts.handshake.
func (l *streamListener) accept(raw net.Conn, rec *connRecord) (net.Conn, error) {
	_ = raw.SetDeadline(time.Now().Add(l.cfg.Timeouts.Handshake))
	defer func() { _ = raw.SetDeadline(time.Time{}) }()
	if l.cfg.Protocol == ProtocolPostgres {
		return l.negotiatePostgres(raw, rec)
	}
	switch l.cfg.TLS.Mode {
	case TLSPassthrough:
		sni, consumed, err := peekClientHello(context.Background(), raw) // bounded by the deadline set above
		if err != nil {
			return nil, fmt.Errorf("reading the TLS ClientHello: %w", err)
		}
		rec.sni = sni
		return &prefixConn{Conn: raw, prefix: consumed}, nil
	case TLSServer, TLSMutual:
		return l.handshake(raw, nil, rec)
	}
	return raw, nil
}

func (l *streamListener) handshake(raw net.Conn, prefix []byte, rec *connRecord) (net.Conn, error) {
	var under net.Conn = raw
	if len(prefix) > 0 {
		under = &prefixConn{Conn: raw, prefix: prefix}
	}
	tc := tls.Server(under, l.tls)
	// The connection's deadline (timeouts.handshake) bounds the handshake.
	if err := tc.HandshakeContext(context.Background()); err != nil {
		if l.observer != nil {
			l.observer.HandshakeFailed(l.cfg.Name, raw.RemoteAddr(), err)
		}
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	st := tc.ConnectionState()
	rec.sni, rec.tlsVer = st.ServerName, st.Version
	id, _ := identity.FromConnectionState(st)
	rec.identity = id.String()
	if l.allow != nil && !l.allow.Allows(id) {
		// The provider refuses these at the handshake; this is the
		// proxy's own check, so a provider that does not still fails closed.
		reason := "identity_not_allowed"
		if id.IsZero() {
			reason = "no_identity"
		}
		l.metrics.authzDenied(l.cfg.Name, labelNone, reason)
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
func (l *streamListener) negotiatePostgres(raw net.Conn, rec *connRecord) (net.Conn, error) {
	wantTLS := l.cfg.TLS.Mode == TLSServer || l.cfg.TLS.Mode == TLSMutual
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

func (l *streamListener) logConn(rec *connRecord) {
	if l.access == nil {
		return
	}
	host, _, _ := net.SplitHostPort(rec.client)
	attrs := []slog.Attr{
		slog.String("listener", l.cfg.Name),
		slog.String("protocol", l.cfg.Protocol),
		slog.String("client_ip", host),
		slog.String("route", rec.route),
		slog.String("upstream", rec.upstream),
		slog.String("upstream_target", rec.target),
		slog.Int64("bytes_in", rec.up),
		slog.Int64("bytes_out", rec.down),
		slog.Float64("duration_ms", ms(time.Since(rec.start))),
		slog.String("close_reason", rec.reason),
	}
	if rec.sni != "" {
		attrs = append(attrs, slog.String("sni", rec.sni))
	}
	if rec.tlsVer != 0 {
		attrs = append(attrs, slog.String("tls_version", tls.VersionName(rec.tlsVer)))
	}
	if rec.identity != "" {
		attrs = append(attrs, slog.String("identity", rec.identity))
	}
	if rec.err != nil {
		attrs = append(attrs, slog.String("error", rec.err.Error()))
	}
	l.access.LogAttrs(context.Background(), slog.LevelInfo, "connection", attrs...)
}
