package pki

import (
	"crypto/tls"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
	"github.com/drawbridge-proxy/drawbridge/pki/cert"
)

// handshakeServer accepts on 127.0.0.1:0 and completes the server side of
// each TLS handshake with cfg, then closes. Both the baseline and the
// Manager configs go through this same loop.
func handshakeServer(b *testing.B, cfg *tls.Config) string {
	b.Helper()
	return drawtest.ServeTCP(b, func(c net.Conn) {
		tc := tls.Server(c, cfg)
		if err := tc.Handshake(); err == nil {
			_, _ = tc.Write([]byte{1})
		}
		_ = tc.Close()
	})
}

func benchHandshakes(b *testing.B, addr string, cli *tls.Config) {
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 1)
		for pb.Next() {
			c, err := tls.Dial("tcp", addr, cli)
			if err != nil {
				b.Error(err)
				return
			}
			// Reading the byte ends the handshake on both sides (TLS 1.3
			// clients finish before the server has checked their certificate).
			if _, err := c.Read(buf); err != nil {
				b.Error(err)
			}
			_ = c.Close()
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handshakes/s")
	// CPU time of the whole process (client and server sides) per
	// handshake: steadier than wall time on a shared machine.
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/handshake")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkHandshake compares new-connection handshake rates of the
// Manager's configs with Go's plain crypto/tls server holding a static
// certificate from the same CA, in one run: "internal" is a mutual TLS 1.3
// hop (client certificate verified both ways), "edge" is server-only TLS.
// Sessions are never resumed: every iteration is a full handshake.
func BenchmarkHandshake(b *testing.B) {
	p := newTestPKI(b, testConfig(b), nil)
	api := p.manage(b, "api", "api.drawbridge.internal")
	web := p.manage(b, "web")
	apiCert, _ := p.mgr.Certificate(api)
	webCert, _ := p.mgr.Certificate(web)
	pool := p.ca.TrustBundle().Pool()

	b.Run("internal/plain-crypto-tls", func(b *testing.B) {
		srv := &tls.Config{Certificates: []tls.Certificate{*apiCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool, MinVersion: tls.VersionTLS13}
		cli := &tls.Config{Certificates: []tls.Certificate{*webCert}, RootCAs: pool, ServerName: "api.drawbridge.internal", MinVersion: tls.VersionTLS13}
		benchHandshakes(b, handshakeServer(b, srv), cli)
	})
	b.Run("internal/manager", func(b *testing.B) {
		srv, err := p.mgr.ServerConfig(cert.ServerOptions{Identity: api, Mutual: true})
		if err != nil {
			b.Fatal(err)
		}
		cli, err := p.mgr.ClientConfig(cert.ClientOptions{Identity: web, ServerID: api})
		if err != nil {
			b.Fatal(err)
		}
		benchHandshakes(b, handshakeServer(b, srv), cli)
	})
	b.Run("edge/plain-crypto-tls", func(b *testing.B) {
		srv := &tls.Config{Certificates: []tls.Certificate{*apiCert}}
		cli := &tls.Config{RootCAs: pool, ServerName: "api.drawbridge.internal"}
		benchHandshakes(b, handshakeServer(b, srv), cli)
	})
	b.Run("edge/manager", func(b *testing.B) {
		srv, err := p.mgr.ServerConfig(cert.ServerOptions{Identity: api, Profile: cert.Edge})
		if err != nil {
			b.Fatal(err)
		}
		cli := &tls.Config{RootCAs: pool, ServerName: "api.drawbridge.internal"}
		benchHandshakes(b, handshakeServer(b, srv), cli)
	})
}
