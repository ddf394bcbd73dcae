package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
)

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), DNSNames: []string{"edge"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// ticketServer serves TLS with cfg: each connection gets one byte after
// its handshake (so the client reads the session ticket) and is closed.
func ticketServer(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("x"))
			_ = c.Close()
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

// resumed dials addr with cache and reports whether the session resumed.
func resumed(t *testing.T, addr string, cache tls.ClientSessionCache, version uint16) bool {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, ClientSessionCache: cache, //nolint:gosec // test certificate
		MinVersion: version, MaxVersion: version})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.ReadAll(c) // the byte, and with it the TLS 1.3 session ticket
	return c.ConnectionState().DidResume
}

// A session ticket resumes for less than 24h and never after: the ring's
// keys rotate every 8h and each is dropped 24h after it was made, even
// when no handshake happened in between.
func TestSessionTicketsExpireWithinADay(t *testing.T) {
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(v), func(t *testing.T) {
			clock := drawtest.ClockAt(time.Unix(1_800_000_000, 0))
			ring := newTicketRing(clock.Now)
			addr := ticketServer(t, ring.apply(&tls.Config{Certificates: []tls.Certificate{selfSigned(t)}}))
			early, late := tls.NewLRUClientSessionCache(4), tls.NewLRUClientSessionCache(4)
			resumed(t, addr, early, v) // both caches get a ticket under the first key
			resumed(t, addr, late, v)
			if !resumed(t, addr, early, v) {
				t.Fatal("a fresh ticket did not resume")
			}
			clock.Advance(23 * time.Hour) // two rotations due, the first key still in the window
			if !resumed(t, addr, late, v) {
				t.Error("a 23h-old ticket did not resume; want it accepted within the window")
			}
			fresh := tls.NewLRUClientSessionCache(4)
			resumed(t, addr, fresh, v)             // a ticket under the newest key
			clock.Advance(time.Hour + time.Second) // the first key is 24h old now
			if resumed(t, addr, early, v) {        // early's tickets are all from t0
				t.Error("a ticket from before the rotation window resumed; want a full handshake")
			}
			if !resumed(t, addr, fresh, v) {
				t.Error("a 1h-old ticket under a newer key did not resume")
			}
		})
	}
}
