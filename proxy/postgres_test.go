package proxy_test

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
	"github.com/drawbridge-proxy/drawbridge/proxy"
	"github.com/drawbridge-proxy/drawbridge/proxy/pgwire"
)

// fakePostgres answers like a PostgreSQL server that requires TLS: 'S' to
// an SSLRequest, then over TLS it reads the StartupMessage and replies with
// the user name it saw. With plain set it refuses TLS ('N').
func fakePostgres(t *testing.T, tt *testTLS, plain bool) string {
	cert := tt.leafNoT("db") // has the 127.0.0.1 IP SAN the dial verifies
	return tcpBackend(t, func(c net.Conn) {
		req, err := pgwire.ReadStartup(c)
		if err != nil || req.Code != pgwire.SSLRequestCode {
			return
		}
		if plain {
			_, _ = c.Write([]byte{'N'})
			return
		}
		_, _ = c.Write([]byte{'S'})
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
		startup, err := pgwire.ReadStartup(tc)
		if err != nil {
			return
		}
		_, _ = tc.Write([]byte("startup:" + string(startup.Raw[8:14])))
	})
}

func postgresGateway(t *testing.T, tt *testTLS, upstreamProtocol, target string) *testGateway {
	cfg := proxy.Config{
		Listeners: map[string]proxy.ListenerConfig{"edge": {
			Protocol: proxy.ProtocolPostgres,
			TLS:      proxy.ListenerTLS{Mode: proxy.TLSServer},
			Routes:   []proxy.RouteConfig{{Upstream: "db"}},
		}},
		Upstreams: map[string]proxy.UpstreamConfig{"db": {Protocol: upstreamProtocol, Targets: []string{target}}},
	}
	for name, l := range cfg.Listeners {
		l.Address = "127.0.0.1:0"
		cfg.Listeners[name] = l
	}
	gw := startGatewayWith(t, cfg, proxy.Deps{TLS: tt})
	return gw
}

func TestPostgresSSLRequestOnBothLegs(t *testing.T) {
	tt := newTestTLS(t)
	gw := postgresGateway(t, tt, proxy.ProtocolPostgres, fakePostgres(t, tt, false))
	c := dialTCP(t, gw.addr)
	if _, err := c.Write(pgwire.SSLRequest()); err != nil {
		t.Fatal(err)
	}
	answer := make([]byte, 1)
	if _, err := io.ReadFull(c, answer); err != nil || answer[0] != 'S' {
		t.Fatalf("SSLRequest answered %q, %v; want 'S'", answer, err)
	}
	tc := tls.Client(c, &tls.Config{ServerName: "edge", RootCAs: tt.pool})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS with drawbridge: %v", err)
	}
	if _, err := tc.Write(pgwire.StartupMessage(map[string]string{"user": "alice"}, "user")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len("startup:user\x00a"))
	if _, err := io.ReadFull(tc, got); err != nil {
		t.Fatalf("reading the server's answer: %v", err)
	}
	if string(got) != "startup:user\x00a" {
		t.Errorf("server saw %q; the startup message did not cross both TLS legs intact", got)
	}
}

func TestPostgresDirectTLS(t *testing.T) {
	tt := newTestTLS(t)
	gw := postgresGateway(t, tt, proxy.ProtocolPostgres, fakePostgres(t, tt, false))
	tc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", gw.addr,
		&tls.Config{ServerName: "edge", RootCAs: tt.pool, NextProtos: []string{"postgresql"}})
	if err != nil {
		t.Fatalf("direct TLS: %v", err)
	}
	defer tc.Close()
	if p := tc.ConnectionState().NegotiatedProtocol; p != "postgresql" {
		t.Errorf("ALPN %q, want postgresql (PostgreSQL 17 clients require it)", p)
	}
	_, _ = tc.Write(pgwire.StartupMessage(map[string]string{"user": "bob"}, "user"))
	got, _ := io.ReadAll(tc)
	if string(got) != "startup:user\x00b" {
		t.Errorf("server saw %q", got)
	}
}

func TestPostgresPlaintextIsRefusedWithAnError(t *testing.T) {
	tt := newTestTLS(t)
	gw := postgresGateway(t, tt, proxy.ProtocolPostgres, fakePostgres(t, tt, false))
	c := dialTCP(t, gw.addr)
	// GSSAPI encryption is declined, then a plain StartupMessage is refused.
	gss := pgwire.SSLRequest()
	gss[7] = byte(pgwire.GSSENCRequestCode & 0xff)
	_, _ = c.Write(gss)
	answer := make([]byte, 1)
	if _, err := io.ReadFull(c, answer); err != nil || answer[0] != 'N' {
		t.Fatalf("GSSENCRequest answered %q, %v; want 'N'", answer, err)
	}
	_, _ = c.Write(pgwire.StartupMessage(map[string]string{"user": "eve"}, "user"))
	e, typ, err := pgwire.ReadError(bufio.NewReader(c))
	if err != nil || typ != 'E' {
		t.Fatalf("got message %q, %v; want an ErrorResponse", typ, err)
	}
	if e.Severity != "FATAL" || e.Code != pgwire.InvalidAuthorizationSpecification {
		t.Errorf("error %+v, want FATAL 28000", e)
	}
}

func TestPostgresUpstreamThatRefusesTLSIsNeverUsedInPlainText(t *testing.T) {
	tt := newTestTLS(t)
	gw := postgresGateway(t, tt, proxy.ProtocolPostgres, fakePostgres(t, tt, true))
	tc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", gw.addr,
		&tls.Config{ServerName: "edge", RootCAs: tt.pool, NextProtos: []string{"postgresql"}})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	e, typ, err := pgwire.ReadError(bufio.NewReader(tc))
	if err != nil || typ != 'E' || e.Code != pgwire.CannotConnectNow {
		t.Fatalf("got %+v %q %v; want a 57P03 ErrorResponse", e, typ, err)
	}
	drawtest.WaitFor(t, "connection log", func() bool { return countMsg(gw.logs, "connection") == 1 })
	line := lastMsg(t, gw.logs, "connection")
	if line["close_reason"] != "upstream_unavailable" {
		t.Errorf("log %v", line)
	}
}
