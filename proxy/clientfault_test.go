package proxy_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/drawbridge-proxy/drawbridge/proxy"
	"github.com/drawbridge-proxy/drawbridge/proxy/breaker"
)

// recordingUpstream remembers what reached it: complete requests by path,
// and the client addresses of connections on which a body broke, so a test
// can tell whether the gateway reused such a connection.
type recordingUpstream struct {
	srv *httptest.Server

	mu       sync.Mutex // guards the following fields
	complete []string   // "METHOD path" of requests whose body arrived whole
	broken   map[string]bool
	reused   []string // paths that arrived on a connection where a body had broken
}

func newRecordingUpstream(t *testing.T) *recordingUpstream {
	t.Helper()
	u := &recordingUpstream{broken: map[string]bool{}}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.Copy(io.Discard, r.Body)
		u.mu.Lock()
		if u.broken[r.RemoteAddr] {
			u.reused = append(u.reused, r.URL.Path)
		}
		if err != nil {
			u.broken[r.RemoteAddr] = true
		} else {
			u.complete = append(u.complete, r.Method+" "+r.URL.Path)
		}
		u.mu.Unlock()
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *recordingUpstream) snapshot() (complete, reused []string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.complete...), append([]string(nil), u.reused...)
}

// clientFaultGateway is a gateway whose breaker opens after two failures
// in a row and whose route takes bodies of at most 16 bytes, on a plain
// listener "edge" and a TLS listener "tls".
func clientFaultGateway(t *testing.T, up *recordingUpstream, engine string) (*testGateway, *prometheus.Registry, string) {
	t.Helper()
	tt := newTestTLS(t)
	routes := []proxy.RouteConfig{{Name: "all", Upstream: "app", MaxBodyBytes: 16}}
	cfg := proxy.Config{
		Listeners: map[string]proxy.ListenerConfig{
			"edge": {Routes: routes},
			"tls":  {Address: "127.0.0.1:0", TLS: proxy.ListenerTLS{Mode: proxy.TLSServer}, Routes: routes},
		},
		Upstreams: map[string]proxy.UpstreamConfig{"app": {
			Targets: []string{hostOf(up.srv)},
			Breaker: breaker.Config{ConsecutiveFailures: 2, OpenTimeout: time.Minute},
		}},
		ShutdownGrace: 5 * time.Second,
	}
	withEngine(cfg, engine)
	reg := prometheus.NewRegistry()
	gw := startGatewayWith(t, cfg, proxy.Deps{TLS: tt, Registerer: reg})
	return gw, reg, gw.srv.Addr("tls").String()
}

// rawTLSExchange is rawExchange over TLS (HTTP/1.1 by ALPN).
func rawTLSExchange(t *testing.T, addr, request string) (string, string) {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
		&tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}) //nolint:gosec // test CA
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	resp, _ := io.ReadAll(c)
	text := string(resp)
	status, _, _ := strings.Cut(text, "\r\n")
	return status, text
}

// Bodies the client breaks must never count against the target: many of
// them in a row leave the breaker closed, and each is answered 400 or 413
// with the connection closed, counted by reason, never reaching the
// upstream whole and never leaving a half-written upstream connection in
// the pool.
func TestClientBodyFailuresDoNotTripTheBreaker(t *testing.T) {
	forEachEngine(t, testClientBodyFailures)
}

func testClientBodyFailures(t *testing.T, engine string) {
	up := newRecordingUpstream(t)
	gw, reg, tlsAddr := clientFaultGateway(t, up, engine)
	attacks := []struct {
		name, path, body, status string
	}{
		{"bad chunk size", "/badchunk", "5\r\nhello\r\nzz\r\nworld\r\n0\r\n\r\n", "HTTP/1.1 400 "},
		{"oversized chunk size", "/hugechunk", "5\r\nhello\r\nfffffffffffffffffffff\r\n", "HTTP/1.1 400 "},
		{"chunked over the limit", "/toolong", "a\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n", "HTTP/1.1 413 "},
	}
	listeners := map[string]func(*testing.T, string, string) (string, string){"plain": rawExchange, "tls": rawTLSExchange}
	addrs := map[string]string{"plain": gw.addr, "tls": tlsAddr}
	for _, ln := range []string{"plain", "tls"} {
		for _, a := range attacks {
			for range 3 {
				req := "POST " + a.path + " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + a.body +
					"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
				status, text := listeners[ln](t, addrs[ln], req)
				if !strings.HasPrefix(status, a.status) || strings.Count(text, "HTTP/1.1 ") != 1 {
					t.Errorf("%s, %s: got %q and %d responses, want %q and the connection closed:\n%s",
						ln, a.name, status, strings.Count(text, "HTTP/1.1 "), a.status, text)
				}
			}
		}
	}
	// The target is still trusted: a good request goes through.
	for range 3 {
		resp, err := http.Post(gw.url+"/good", "text/plain", strings.NewReader("fine"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("good request after client faults: status %d, want 200 (breaker opened by client faults?)", resp.StatusCode)
		}
	}
	complete, reused := up.snapshot()
	for _, p := range complete {
		if p != "POST /good" {
			t.Errorf("upstream received %s whole, want only /good", p)
		}
	}
	if len(reused) > 0 {
		t.Errorf("requests %v reached the upstream on a connection whose previous body broke; want it dropped", reused)
	}
	assertClientErrors(t, reg, map[string]int{"body_malformed": 12, "body_too_large": 6})
}

// assertClientErrors checks drawbridge_client_errors_total by reason, and
// that no attempt was counted as an upstream error.
func assertClientErrors(t *testing.T, reg *prometheus.Registry, want map[string]int) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, mf := range mfs {
		switch mf.GetName() {
		case "drawbridge_client_errors_total":
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "reason" {
						got[l.GetValue()] += int(m.GetCounter().GetValue())
					}
				}
			}
		case "drawbridge_upstream_errors_total":
			t.Errorf("drawbridge_upstream_errors_total has %d series, want none: the client's faults are not the upstream's", len(mf.GetMetric()))
		}
	}
	for reason, n := range want {
		if got[reason] != n {
			t.Errorf("drawbridge_client_errors_total{reason=%q} = %d, want %d (all: %v)", reason, got[reason], n, got)
		}
	}
}

// Over HTTP/2 a body shorter than its content-length, and a body without
// content-length over the route's limit, are the client's faults too.
func TestHTTP2ClientBodyFailuresDoNotTripTheBreaker(t *testing.T) {
	up := newRecordingUpstream(t)
	_, reg, tlsAddr := clientFaultGateway(t, up, proxy.HTTP1Native) // HTTP/2 is net/http's on both
	for range 4 {
		if first := h2ShortBody(t, tlsAddr); first != 0x8c { // HPACK static index 12: ":status: 400"
			t.Errorf("short HTTP/2 body: response header block starts %#x, want 0x8c (:status 400)", first)
		}
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true} //nolint:gosec // test CA
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	for range 4 {
		pr, pw := io.Pipe()
		go func() {
			for range 4 {
				_, _ = pw.Write([]byte("0123456789"))
			}
			pw.Close()
		}()
		req, _ := http.NewRequest(http.MethodPost, "https://"+tlsAddr+"/toolong", pr)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("streamed HTTP/2 body over the limit: got %s %d, want HTTP/2 413", resp.Proto, resp.StatusCode)
		}
	}
	resp, err := client.Post("https://"+tlsAddr+"/good", "text/plain", strings.NewReader("fine"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("good request after client faults: status %d, want 200", resp.StatusCode)
	}
	if complete, _ := up.snapshot(); len(complete) != 1 {
		t.Errorf("upstream received %v whole, want only /good", complete)
	}
	assertClientErrors(t, reg, map[string]int{"body_malformed": 4, "body_too_large": 4})
}

// h2ShortBody speaks HTTP/2 by hand: a POST declaring content-length 10
// whose stream ends after 5 bytes. It returns the first byte of the
// response's header block.
func h2ShortBody(t *testing.T, addr string) byte {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}}) //nolint:gosec // test CA
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	var block bytes.Buffer
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "https"}, {":path", "/short"}, {":authority", "x"}, {"content-length", "10"}} {
		block.WriteByte(0) // literal without indexing, new name, no Huffman (RFC 7541 6.2.2)
		block.WriteByte(byte(len(f[0])))
		block.WriteString(f[0])
		block.WriteByte(byte(len(f[1])))
		block.WriteString(f[1])
	}
	var out bytes.Buffer
	out.WriteString("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	writeFrame(&out, 0x4, 0, 0, nil)               // SETTINGS
	writeFrame(&out, 0x1, 0x4, 1, block.Bytes())   // HEADERS, END_HEADERS
	writeFrame(&out, 0x0, 0x1, 1, []byte("hello")) // DATA, END_STREAM
	if _, err := c.Write(out.Bytes()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for {
		var head [9]byte
		if _, err := io.ReadFull(br, head[:]); err != nil {
			t.Fatalf("reading frames: %v", err)
		}
		n := int(head[0])<<16 | int(head[1])<<8 | int(head[2])
		payload := make([]byte, n)
		if _, err := io.ReadFull(br, payload); err != nil {
			t.Fatal(err)
		}
		stream := binary.BigEndian.Uint32(head[5:]) & 0x7fffffff
		switch {
		case head[3] == 0x1 && stream == 1 && n > 0:
			return payload[0]
		case head[3] == 0x3 && stream == 1, head[3] == 0x7:
			return 0 // RST_STREAM or GOAWAY before any response
		}
	}
}

func writeFrame(w *bytes.Buffer, typ, flags byte, stream uint32, payload []byte) {
	n := len(payload)
	w.Write([]byte{byte(n >> 16), byte(n >> 8), byte(n), typ, flags})
	_ = binary.Write(w, binary.BigEndian, stream)
	w.Write(payload)
}
