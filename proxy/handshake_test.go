package proxy_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/proxy"
)

// tlsHandshakeGateway runs an http listener with TLS whose handshakes are
// bounded by handshake, in front of a backend answering "ok".
func tlsHandshakeGateway(t *testing.T, handshake time.Duration) (addr string, client *tls.Config) {
	t.Helper()
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(backend.Close)
	tt := newTestTLS(t)
	cfg := oneRoute(hostOf(backend))
	l := cfg.Listeners["edge"]
	l.TLS = proxy.ListenerTLS{Mode: proxy.TLSServer}
	l.Timeouts.Handshake = handshake
	cfg.Listeners["edge"] = l
	gw := startGatewayWith(t, cfg, proxy.Deps{TLS: tt})
	return gw.addr, &tls.Config{RootCAs: tt.pool, ServerName: "localhost", MinVersion: tls.VersionTLS13}
}

// A client that connects and never says hello is disconnected once the
// handshake timeout passes; one whose handshake finished is not held to
// that bound afterwards (the deadline that bounds the handshake is gone).
func TestTLSHandshakeTimeout(t *testing.T) {
	const bound = 200 * time.Millisecond
	addr, client := tlsHandshakeGateway(t, bound)

	t.Run("silent client is closed", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second)) // far past the bound: only a hang reaches it
		_, err = c.Read(make([]byte, 1))
		var ne net.Error
		if err == nil || errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("read on a connection that never sent a ClientHello: %v, want it closed by the gateway", err)
		}
	})

	for _, proto := range []string{"http/1.1", "h2"} {
		t.Run("finished handshake outlives the bound/"+proto, func(t *testing.T) {
			cfg := client.Clone()
			cfg.NextProtos = []string{proto}
			// Idle between the handshake and the request, as a slow client is.
			dial := func(ctx context.Context, network, a string) (net.Conn, error) {
				c, err := (&tls.Dialer{Config: cfg}).DialContext(ctx, network, a)
				if err == nil {
					time.Sleep(3 * bound)
				}
				return c, err
			}
			tr := &http.Transport{DialTLSContext: dial, ForceAttemptHTTP2: proto == "h2"}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://" + addr + "/")
			if err != nil {
				t.Fatalf("request after the handshake bound: %v, want a response", err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || string(body) != "ok" || resp.ProtoMajor != map[string]int{"h2": 2, "http/1.1": 1}[proto] {
				t.Errorf("got %s %d %q, want %s 200 \"ok\"", resp.Proto, resp.StatusCode, body, proto)
			}
		})
	}
}
