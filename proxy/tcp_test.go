package proxy_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
	"github.com/drawbridge-proxy/drawbridge/proxy"
)

// streamConfig is a config with one stream listener "edge" relaying to upstream "app".
func streamConfig(protocol string, targets ...string) proxy.Config {
	cfg := oneRoute(targets...)
	l := cfg.Listeners["edge"]
	l.Protocol = protocol
	cfg.Listeners["edge"] = l
	u := cfg.Upstreams["app"]
	u.Protocol = proxy.ProtocolTCP
	cfg.Upstreams["app"] = u
	return cfg
}

// tcpBackend runs handle for every connection.
func tcpBackend(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	return drawtest.ServeTCP(t, handle)
}

// digestBackend reads until the client half-closes, then answers with the
// byte count and SHA-256 of what it read: it only works if half-close is
// passed through.
func digestBackend(t *testing.T) string {
	return tcpBackend(t, func(c net.Conn) {
		h := sha256.New()
		n, _ := io.Copy(h, c)
		fmt.Fprintf(c, "%d %x", n, h.Sum(nil))
	})
}

func dialTCP(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return c.(*net.TCPConn)
}

func TestTCPRelayWithHalfCloseUnderLoad(t *testing.T) {
	gw := startGateway(t, streamConfig(proxy.ProtocolTCP, digestBackend(t)))
	const conns, size = 16, 1 << 20
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i := 0; i < conns; i++ {
		wg.Go(func() {
			payload := bytes.Repeat([]byte{byte(i)}, size)
			c, err := net.DialTimeout("tcp", gw.addr, 5*time.Second)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			if _, err := c.Write(payload); err != nil {
				errs <- err
				return
			}
			_ = c.(*net.TCPConn).CloseWrite()
			got, err := io.ReadAll(c)
			if err != nil {
				errs <- err
				return
			}
			if want := fmt.Sprintf("%d %x", size, sha256.Sum256(payload)); string(got) != want {
				errs <- fmt.Errorf("conn %d: got %q, want %q", i, got, want)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	drawtest.WaitFor(t, "connection log lines", func() bool { return countMsg(gw.logs, "connection") == conns })
	line := lastMsg(t, gw.logs, "connection")
	if line["bytes_in"].(float64) != size || line["close_reason"] != "client_closed" || line["upstream_target"] == "" {
		t.Errorf("connection log line %v", line)
	}
}

func countMsg(logs *syncBuffer, msg string) int {
	return strings.Count(logs.String(), `"msg":"`+msg+`"`)
}

func lastMsg(t *testing.T, logs *syncBuffer, msg string) map[string]any {
	t.Helper()
	var last map[string]any
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, `"msg":"`+msg+`"`) {
			last = decodeLine(t, line)
		}
	}
	if last == nil {
		t.Fatalf("no %q log line in:\n%s", msg, logs)
	}
	return last
}

func TestTCPIdleTimeoutAndMaxLifetime(t *testing.T) {
	echo := tcpBackend(t, func(c net.Conn) { _, _ = io.Copy(c, c) })
	tests := []struct {
		name       string
		idle, life time.Duration
		chatty     bool
		wantReason string
	}{
		{"idle", 200 * time.Millisecond, 0, false, "idle_timeout"},
		{"busy connections are not idle", 300 * time.Millisecond, 1500 * time.Millisecond, true, "max_lifetime"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := streamConfig(proxy.ProtocolTCP, echo)
			l := cfg.Listeners["edge"]
			l.Timeouts.Idle, l.Timeouts.MaxLifetime = tc.idle, tc.life
			cfg.Listeners["edge"] = l
			gw := startGateway(t, cfg)
			c := dialTCP(t, gw.addr)
			start := time.Now()
			if tc.chatty {
				go func() {
					for i := 0; i < 100; i++ {
						if _, err := c.Write([]byte("ping")); err != nil {
							return
						}
						time.Sleep(50 * time.Millisecond)
					}
				}()
			}
			_, _ = io.Copy(io.Discard, c)
			took := time.Since(start)
			limit := tc.idle
			if tc.life > 0 {
				limit = tc.life
			}
			// The gateway's clock starts at its accept, which can come a
			// little before the client's dial returns.
			if took < limit-50*time.Millisecond || took > limit+3*time.Second {
				t.Errorf("closed after %s, want about %s", took, limit)
			}
			drawtest.WaitFor(t, "connection log", func() bool { return countMsg(gw.logs, "connection") == 1 })
			if r := lastMsg(t, gw.logs, "connection")["close_reason"]; r != tc.wantReason {
				t.Errorf("close_reason %v, want %s", r, tc.wantReason)
			}
		})
	}
}

func TestTCPConnectFailureMovesToAnotherTarget(t *testing.T) {
	gw := startGateway(t, streamConfig(proxy.ProtocolTCP, drawtest.FreeAddr(t), digestBackend(t)))
	for i := 0; i < 10; i++ {
		c := dialTCP(t, gw.addr)
		_, _ = c.Write([]byte("x"))
		_ = c.CloseWrite()
		got, _ := io.ReadAll(c)
		if !strings.HasPrefix(string(got), "1 ") {
			t.Fatalf("connection %d got %q; the dead target was not skipped", i, got)
		}
	}
}

func TestTCPUpstreamDiesMidStream(t *testing.T) {
	backend := tcpBackend(t, func(c net.Conn) {
		_, _ = c.Write([]byte("partial"))
		_ = c.(*net.TCPConn).SetLinger(0)
	})
	gw := startGateway(t, streamConfig(proxy.ProtocolTCP, backend))
	c := dialTCP(t, gw.addr)
	got, _ := io.ReadAll(c)
	if string(got) != "partial" {
		t.Errorf("got %q, want the bytes sent before the upstream died", got)
	}
	drawtest.WaitFor(t, "connection log", func() bool { return countMsg(gw.logs, "connection") == 1 })
	if r := lastMsg(t, gw.logs, "connection")["close_reason"]; r != "upstream_closed" && r != "upstream_error" {
		t.Errorf("close_reason %v, want the upstream's end", r)
	}
}

func TestTCPConnectionLimit(t *testing.T) {
	echo := tcpBackend(t, func(c net.Conn) { _, _ = io.Copy(c, c) })
	cfg := streamConfig(proxy.ProtocolTCP, echo)
	l := cfg.Listeners["edge"]
	l.Limits.MaxConnections = 2
	cfg.Listeners["edge"] = l
	gw := startGateway(t, cfg)
	roundTrip := func(c net.Conn, wait time.Duration) error {
		_ = c.SetDeadline(time.Now().Add(wait))
		if _, err := c.Write([]byte("hi")); err != nil {
			return err
		}
		buf := make([]byte, 2)
		_, err := io.ReadFull(c, buf)
		return err
	}
	first, second := dialTCP(t, gw.addr), dialTCP(t, gw.addr)
	for _, c := range []net.Conn{first, second} {
		if err := roundTrip(c, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	third := dialTCP(t, gw.addr) // the kernel queues it; drawbridge must not serve it yet
	if err := roundTrip(third, 300*time.Millisecond); err == nil {
		t.Fatal("a third connection was served with max_connections: 2")
	}
	first.Close()
	// Once a slot frees, the queued connection is served: the "hi" it sent
	// while waiting comes back.
	buf := make([]byte, 2)
	_ = third.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(third, buf); err != nil || string(buf) != "hi" {
		t.Fatalf("after a slot freed the third connection got %q, %v", buf, err)
	}
}

func TestTCPDrainKeepsConnectionsUntilGrace(t *testing.T) {
	echo := tcpBackend(t, func(c net.Conn) { _, _ = io.Copy(c, c) })
	cfg := streamConfig(proxy.ProtocolTCP, echo)
	cfg.ShutdownGrace = 400 * time.Millisecond
	gw := startGateway(t, cfg)
	c := dialTCP(t, gw.addr)
	gw.cancel()
	time.Sleep(100 * time.Millisecond)
	if _, err := c.Write([]byte("ok")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("the connection stopped working during the grace period: %v", err)
	}
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("reading until the cut: %v", err)
	}
	if _, err := net.DialTimeout("tcp", gw.addr, time.Second); err == nil {
		t.Error("new connections are still accepted after the drain")
	}
}

// --- TLS: SNI passthrough and PostgreSQL negotiation ---

// testTLS is a throwaway CA and the certificates the TCP tests need.
type testTLS struct {
	pool *x509.CertPool
	ca   *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestTLS(t *testing.T) *testTLS {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &testTLS{pool: pool, ca: ca, key: key}
}

func (tt *testTLS) leaf(t *testing.T, name string) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tt.ca, &key.PublicKey, tt.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// ServerTLS and ClientTLS make testTLS a proxy.TLSProvider.
func (tt *testTLS) ServerTLS(l proxy.ListenerConfig) (*tls.Config, error) {
	return &tls.Config{Certificates: []tls.Certificate{tt.leafNoT(l.Name)}, MinVersion: tls.VersionTLS13}, nil
}

func (tt *testTLS) ClientTLS(string, proxy.UpstreamTLS) (*tls.Config, error) {
	return &tls.Config{RootCAs: tt.pool, MinVersion: tls.VersionTLS13}, nil
}

func (tt *testTLS) leafNoT(name string) tls.Certificate {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), DNSNames: []string{name, "localhost", "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tt.ca, &key.PublicKey, tt.key)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// tlsNameBackend terminates TLS with a certificate for name and answers
// the name, so the client can tell which backend it reached.
func tlsNameBackend(t *testing.T, tt *testTLS, name string) string {
	cert := tt.leaf(t, name)
	return tcpBackend(t, func(c net.Conn) {
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
		if tc.Handshake() != nil {
			return
		}
		_, _ = io.WriteString(tc, name)
		_ = tc.CloseWrite()
	})
}

func TestSNIPassthroughRouting(t *testing.T) {
	tt := newTestTLS(t)
	cfg := proxy.Config{
		Listeners: map[string]proxy.ListenerConfig{"edge": {
			Protocol: proxy.ProtocolTCP,
			TLS:      proxy.ListenerTLS{Mode: proxy.TLSPassthrough},
			Routes: []proxy.RouteConfig{
				{Match: proxy.MatchConfig{Hosts: []string{"a.internal"}}, Upstream: "a"},
				{Match: proxy.MatchConfig{Hosts: []string{"*.b.internal"}}, Upstream: "b"},
				{Upstream: "other"},
			},
		}},
		Upstreams: map[string]proxy.UpstreamConfig{
			"a":     {Protocol: proxy.ProtocolTCP, Targets: []string{tlsNameBackend(t, tt, "a.internal")}},
			"b":     {Protocol: proxy.ProtocolTCP, Targets: []string{tlsNameBackend(t, tt, "x.b.internal")}},
			"other": {Protocol: proxy.ProtocolTCP, Targets: []string{tlsNameBackend(t, tt, "other.internal")}},
		},
	}
	gw := startGateway(t, cfg)
	for sni, want := range map[string]string{"a.internal": "a.internal", "x.b.internal": "x.b.internal", "other.internal": "other.internal"} {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", gw.addr, &tls.Config{ServerName: sni, RootCAs: tt.pool})
		if err != nil {
			t.Fatalf("SNI %s: %v (the backend's certificate must verify end to end)", sni, err)
		}
		got, _ := io.ReadAll(c)
		c.Close()
		if string(got) != want {
			t.Errorf("SNI %s reached %q, want %q", sni, got, want)
		}
	}
}

func TestTCPConnectionSpan(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	defer tp.Shutdown(context.Background())
	gw := startGatewayWith(t, streamConfig(proxy.ProtocolTCP, digestBackend(t)), proxy.Deps{Tracing: tp})
	c := dialTCP(t, gw.addr)
	_, _ = c.Write([]byte("hello"))
	_ = c.CloseWrite()
	_, _ = io.ReadAll(c)
	drawtest.WaitFor(t, "the connection span", func() bool { return len(rec.Ended()) == 1 })
	span := rec.Ended()[0]
	attrs := map[string]string{}
	for _, kv := range span.Attributes() {
		attrs[string(kv.Key)] = kv.Value.String()
	}
	if span.Name() != "tcp edge" || span.SpanKind().String() != "server" {
		t.Errorf("span %q kind %s, want a server span named \"tcp edge\"", span.Name(), span.SpanKind())
	}
	for k, want := range map[string]string{"drawbridge.bytes_in": "5", "drawbridge.close_reason": "client_closed", "drawbridge.upstream": "app"} {
		if attrs[k] != want {
			t.Errorf("attribute %s = %q, want %q (all: %v)", k, attrs[k], want, attrs)
		}
	}
}
