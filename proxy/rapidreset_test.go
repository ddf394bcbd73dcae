package proxy_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/proxy"
)

// h2Get is the HPACK block of a GET for path, every field a literal
// without indexing (RFC 7541 6.2.2), so the test needs no encoder.
func h2Get(path string) []byte {
	var b bytes.Buffer
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":path", path}, {":authority", "x"}} {
		b.WriteByte(0)
		b.WriteByte(byte(len(f[0])))
		b.WriteString(f[0])
		b.WriteByte(byte(len(f[1])))
		b.WriteString(f[1])
	}
	return b.Bytes()
}

// h2Dial opens an HTTP/2 connection by ALPN and sends the preface.
func h2Dial(t *testing.T, addr string) *tls.Conn {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}}) //nolint:gosec // test CA
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var out bytes.Buffer
	out.WriteString("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	writeFrame(&out, 0x4, 0, 0, nil) // SETTINGS
	if _, err := c.Write(out.Bytes()); err != nil {
		t.Fatal(err)
	}
	return c
}

// countingUpstream counts the requests that reach it.
func countingUpstream(t *testing.T, hits *atomic.Int64) string {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(up.Close)
	return hostOf(up)
}

func h2Gateway(t *testing.T, upstream string, streamsPerSecond int) string {
	t.Helper()
	cfg := oneRoute(upstream)
	cfg.Listeners["tls"] = proxy.ListenerConfig{Address: "127.0.0.1:0", TLS: proxy.ListenerTLS{Mode: proxy.TLSServer},
		Limits: proxy.ListenerLimits{MaxStreamsPerSecond: streamsPerSecond}, Routes: []proxy.RouteConfig{{Name: "tls", Upstream: "app"}}}
	gw := startGatewayWith(t, cfg, proxy.Deps{TLS: newTestTLS(t)})
	return gw.srv.Addr("tls").String()
}

// Streams reset right after their HEADERS (rapid reset), on several
// connections at once, are not sent upstream: a request whose context is
// done before its attempt is dropped.
func TestRapidResetStreamsAlmostNeverReachTheUpstream(t *testing.T) {
	var hits atomic.Int64
	addr := h2Gateway(t, countingUpstream(t, &hits), 100000)
	const conns, n = 4, 250
	var out bytes.Buffer
	for i := range n {
		id := uint32(2*i + 1)
		writeFrame(&out, 0x1, 0x5, id, h2Get("/reset"))  // HEADERS, END_STREAM|END_HEADERS
		writeFrame(&out, 0x3, 0, id, []byte{0, 0, 0, 8}) // RST_STREAM, CANCEL
	}
	for range conns {
		if _, err := h2Dial(t, addr).Write(out.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(500 * time.Millisecond)
	got, total := hits.Load(), int64(conns*n)
	t.Logf("%d of %d reset streams reached the upstream", got, total)
	// A stream whose reset is processed only after its attempt went out
	// may reach the upstream: that takes a descheduled goroutine. The
	// native client checks the context just before it writes, so on an
	// idle machine none arrive and under -race on a loaded one (load
	// average 26) up to 8 in 1,000; net/http's Transport hands the write
	// to a goroutine of its own and lets 5 to 8% through on a quiet
	// machine and 16% under -race in CI. The bounds (5%, and 35% with
	// http1: std) are a few times the native figure and twice the worst
	// std one, far below a gateway that ignores resets (most would arrive).
	most := total / 20
	if os.Getenv("DRAWBRIDGE_HTTP1") == proxy.HTTP1Std {
		most = total * 35 / 100
	}
	if got > most {
		t.Errorf("%d of %d reset streams reached the upstream, want at most %d", got, total, most)
	}
}

// A connection opening streams faster than limits.max_streams_per_second
// gets 429s past the budget and a GOAWAY; the upstream sees at most the
// budget.
func TestStreamsPerConnectionPerSecondAreBounded(t *testing.T) {
	var hits atomic.Int64
	addr := h2Gateway(t, countingUpstream(t, &hits), 20)
	c := h2Dial(t, addr)
	var out bytes.Buffer
	for i := range 60 {
		writeFrame(&out, 0x1, 0x5, uint32(2*i+1), h2Get("/flood"))
	}
	if _, err := c.Write(out.Bytes()); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	goaway := false
	for !goaway {
		var head [9]byte
		if _, err := io.ReadFull(br, head[:]); err != nil {
			break
		}
		n := int(head[0])<<16 | int(head[1])<<8 | int(head[2])
		payload := make([]byte, n)
		if _, err := io.ReadFull(br, payload); err != nil {
			break
		}
		goaway = head[3] == 0x7
	}
	if !goaway {
		t.Error("no GOAWAY for a connection over its stream budget")
	}
	if got := hits.Load(); got > 20 {
		t.Errorf("upstream saw %d requests, want at most the budget of 20", got)
	}
	// A new connection is served.
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true} //nolint:gosec // test CA
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("https://" + addr + "/after")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("a new connection after the flood got %d, want 200", resp.StatusCode)
	}
}
