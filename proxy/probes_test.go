package proxy_test

import (
	"crypto/tls"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
	"github.com/drawbridge-proxy/drawbridge/proxy"
	"github.com/drawbridge-proxy/drawbridge/proxy/pgwire"
)

// acceptCounter is an upstream that counts the connections it accepts and
// closes them: a probe that gets through would show up here.
func acceptCounter(t *testing.T, n *atomic.Int64) string {
	return tcpBackend(t, func(net.Conn) { n.Add(1) })
}

// closedWithin reads c until EOF or error and fails unless that happens
// within limit; it returns what was read.
func closedWithin(t *testing.T, c net.Conn, limit time.Duration) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(limit))
	b, err := io.ReadAll(c)
	var ne net.Error
	if err != nil && (!asNetErr(err, &ne) || ne.Timeout()) {
		t.Fatalf("connection still open after %s (read %q, %v); want it closed", limit, b, err)
	}
	return b
}

func asNetErr(err error, target *net.Error) bool {
	ne, ok := err.(net.Error) //nolint:errorlint // the conn's own error
	if ok {
		*target = ne
	}
	return ok
}

// probeGateway runs a postgres listener "edge" (TLS required) and a tcp
// listener "raw" with TLS, both toward counting upstreams, with a short
// handshake timeout.
func probeGateway(t *testing.T, tt *testTLS, pgHits, tcpHits *atomic.Int64) (pg, raw string) {
	t.Helper()
	timeouts := proxy.ServerTimeouts{Handshake: 300 * time.Millisecond}
	cfg := proxy.Config{
		Listeners: map[string]proxy.ListenerConfig{
			"edge": {Address: "127.0.0.1:0", Protocol: proxy.ProtocolPostgres, TLS: proxy.ListenerTLS{Mode: proxy.TLSServer},
				Timeouts: timeouts, Routes: []proxy.RouteConfig{{Upstream: "db"}}},
			"raw": {Address: "127.0.0.1:0", Protocol: proxy.ProtocolTCP, TLS: proxy.ListenerTLS{Mode: proxy.TLSServer},
				Timeouts: timeouts, Routes: []proxy.RouteConfig{{Upstream: "app"}}},
		},
		Upstreams: map[string]proxy.UpstreamConfig{
			"db":  {Protocol: proxy.ProtocolTCP, Targets: []string{acceptCounter(t, pgHits)}},
			"app": {Protocol: proxy.ProtocolTCP, Targets: []string{acceptCounter(t, tcpHits)}},
		},
	}
	gw := startGatewayWith(t, cfg, proxy.Deps{TLS: tt})
	return gw.addr, gw.srv.Addr("raw").String()
}

// What an attacker sends to the PostgreSQL and TCP listeners: each probe
// gets a clean refusal (a PostgreSQL error where the protocol has one) and
// a closed connection within the handshake timeout, and never a byte to
// the upstream; a slow client holds up nobody else.
func TestStreamListenerProbes(t *testing.T) {
	tt := newTestTLS(t)
	var pgHits, tcpHits atomic.Int64
	pg, raw := probeGateway(t, tt, &pgHits, &tcpHits)
	probes := []struct {
		name, addr string
		send       []byte
		wantError  bool // a PostgreSQL ErrorResponse before the close
	}{
		{"postgres garbage", pg, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), true},
		{"postgres 2 GiB startup length", pg, []byte{0x80, 0, 0, 0, 0, 3, 0, 0}, true},
		{"postgres negative length", pg, []byte{0xff, 0xff, 0xff, 0xff, 0, 3, 0, 0}, true},
		{"postgres SSLRequest then plain bytes", pg, append(pgwire.SSLRequest(), []byte("\x00\x00\x00\x08\x00\x03\x00\x00user\x00x\x00\x00")...), false},
		{"postgres slow: nothing sent", pg, nil, false},
		{"postgres slow: half a startup packet", pg, []byte{0, 0, 0, 80, 0, 3}, false},
		{"tcp garbage instead of a ClientHello", raw, []byte("GET / HTTP/1.1\r\n\r\n"), false},
		{"tcp record header claiming 16 MiB", raw, []byte{0x16, 0x03, 0x01, 0xff, 0xff}, false},
		{"tcp slow: nothing sent", raw, nil, false},
	}
	for _, p := range probes {
		t.Run(p.name, func(t *testing.T) {
			c := dialTCP(t, p.addr)
			if _, err := c.Write(p.send); err != nil {
				t.Fatal(err)
			}
			got := closedWithin(t, c, 3*time.Second)
			if p.wantError && (len(got) == 0 || got[0] != 'E') {
				t.Errorf("got %q, want a PostgreSQL ErrorResponse", got)
			}
		})
	}
	// Slow handshakes in progress do not hold up a real client.
	for range 20 {
		c := dialTCP(t, raw)
		_, _ = c.Write([]byte{0x16, 0x03, 0x01})
	}
	start := time.Now()
	c := dialTCP(t, raw)
	tc := tls.Client(c, &tls.Config{ServerName: "raw", RootCAs: tt.pool})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("a real client behind 20 stalled handshakes: %v", err)
	}
	if took := time.Since(start); took > 250*time.Millisecond {
		t.Errorf("the real handshake took %s behind stalled ones, want well under the 300ms handshake timeout", took)
	}
	tc.Close()
	if pgHits.Load() != 0 {
		t.Errorf("the postgres upstream got %d connections from probes, want 0", pgHits.Load())
	}
	drawtest.WaitFor(t, "the real client's relay", func() bool { return tcpHits.Load() >= 1 })
	if n := tcpHits.Load(); n != 1 {
		t.Errorf("the tcp upstream got %d connections, want 1 (the real client)", n)
	}
}
