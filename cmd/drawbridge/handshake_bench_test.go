package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/cmd/drawbridge/internal/config"
	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
	"github.com/drawbridge-proxy/drawbridge/pki/identity"
)

// BenchmarkHandshakeRate measures new connections per second, each a full
// TLS handshake (no resumption) and one HTTP/1.1 request answered without
// an upstream (404 for an unknown host), on:
//
//   - plain: Go's crypto/tls server with the same certificate, server auth
//   - plain-mutual: the same, requiring and verifying a client certificate
//   - edge: the composed gateway's server listener (edge profile)
//   - internal: the composed gateway's mutual listener (TLS 1.3, identity checks)
//
// all in one run, so their ratios compare. Run without -race:
//
//	go test -run '^$' -bench HandshakeRate -benchtime 5s ./cmd/drawbridge/
func BenchmarkHandshakeRate(b *testing.B) {
	env := newHandshakeEnv(b)
	for _, tc := range []struct {
		name   string
		addr   string
		mutual bool
	}{
		{"plain", env.plain, false},
		{"plain-mutual", env.plainMutual, true},
		{"edge", env.edge, false},
		{"internal", env.internal, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			cfg := &tls.Config{RootCAs: env.roots, ServerName: "localhost"}
			if tc.mutual {
				cfg.Certificates = []tls.Certificate{env.client}
			}
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := oneConnection(tc.addr, cfg); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "conns/s")
		})
	}
}

func oneConnection(addr string, cfg *tls.Config) error {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

type handshakeEnv struct {
	plain, plainMutual, edge, internal string
	roots                              *x509.CertPool
	client                             tls.Certificate
}

func newHandshakeEnv(b *testing.B) *handshakeEnv {
	b.Helper()
	env := &handshakeEnv{edge: drawtest.FreeAddr(b), internal: drawtest.FreeAddr(b)}
	yaml := fmt.Sprintf(`
admin: {address: %q}
logging: {level: error}
access_log: {disabled: true}
%s
listeners:
  edge:
    address: %q
    tls: {mode: server, names: [edge, localhost]}
    routes: [{match: {hosts: [nothing.invalid]}, upstream: app}]
  internal:
    address: %q
    tls: {mode: mutual, names: [gw, localhost]}
    routes: [{match: {hosts: [nothing.invalid]}, upstream: app}]
upstreams:
  app: {targets: ["127.0.0.1:1"]}
`, drawtest.FreeAddr(b), pkiSection(b, ""), env.edge, env.internal)
	f, err := config.Parse("bench.yaml", []byte(yaml))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *gateway, 1)
	done := make(chan error, 1)
	go func() {
		done <- serveWith(ctx, f, io.Discard, hooks{ready: func(gw *gateway) { ready <- gw }})
	}()
	var gw *gateway
	select {
	case gw = <-ready:
	case err := <-done:
		cancel()
		b.Fatal(err)
	}
	b.Cleanup(func() { cancel(); <-done })
	m := gw.pki.pki.Manager
	env.roots = m.TrustBundle().Pool()
	clientID := identity.MustNew(m.TrustDomain(), "client")
	if err := m.Manage(ctx, clientID, nil); err != nil {
		b.Fatal(err)
	}
	c, _ := m.Certificate(clientID)
	env.client = *c
	// The baselines serve the gateway's own edge certificate (same key
	// type and chain) from a static config.
	srvCert, err := m.Certificate(identity.MustNew(m.TrustDomain(), "edge"))
	if err != nil {
		b.Fatal(err)
	}
	env.plain = plainTLSServer(b, &tls.Config{Certificates: []tls.Certificate{*srvCert}})
	env.plainMutual = plainTLSServer(b, &tls.Config{Certificates: []tls.Certificate{*srvCert},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: m.TrustBundle().Pool(), MinVersion: tls.VersionTLS13})
	for !gw.proxy.Ready() {
		time.Sleep(10 * time.Millisecond)
	}
	return env
}

func plainTLSServer(b *testing.B, cfg *tls.Config) string {
	b.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.NotFoundHandler(), ReadHeaderTimeout: 5 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}
