package proxy_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
	"github.com/drawbridge-proxy/drawbridge/proxy"
)

// rawConn writes req on a new connection to addr and returns the
// connection's reader.
func rawConn(t *testing.T, addr, req string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	return c, bufio.NewReader(c)
}

func TestForwardRemovesHopByHopFields(t *testing.T) {
	got := make(chan http.Header, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
		w.Header().Set("Connection", "X-Up-Private")
		w.Header().Set("X-Up-Private", "secret")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-Up-Public", "ok")
	}))
	defer up.Close()
	gw := startGateway(t, oneRoute(hostOf(up)))
	_, br := rawConn(t, gw.addr, "GET / HTTP/1.1\r\nHost: example.test\r\n"+
		"Connection: keep-alive, X-Private\r\nX-Private: 1\r\nKeep-Alive: 300\r\nProxy-Authorization: Basic eA==\r\n"+
		"Te: trailers, deflate\r\nX-Public: 2\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := <-got
	for _, name := range []string{"X-Private", "Keep-Alive", "Proxy-Authorization"} {
		if v, ok := h[name]; ok {
			t.Errorf("upstream got %s: %q, want it removed", name, v)
		}
	}
	if got, want := h.Get("Te"), "trailers"; got != want {
		t.Errorf("upstream got Te %q, want %q", got, want)
	}
	if got := h.Get("X-Public"); got != "2" {
		t.Errorf("upstream got X-Public %q, want 2", got)
	}
	for _, name := range []string{"X-Up-Private", "Keep-Alive"} {
		if v, ok := resp.Header[name]; ok {
			t.Errorf("client got %s: %q, want it removed", name, v)
		}
	}
	if got := resp.Header.Get("X-Up-Public"); got != "ok" {
		t.Errorf("client got X-Up-Public %q, want ok", got)
	}
}

func TestForwardInterimResponses(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hints" {
			w.Header().Set("Link", "</style.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Link")
			_, _ = io.WriteString(w, "final")
			return
		}
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "read %d", len(b))
	}))
	defer up.Close()
	gw := startGateway(t, oneRoute(hostOf(up)))

	t.Run("103 early hints", func(t *testing.T) {
		_, br := rawConn(t, gw.addr, "GET /hints HTTP/1.1\r\nHost: example.test\r\n\r\n")
		hints, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if hints.StatusCode != http.StatusEarlyHints || hints.Header.Get("Link") == "" {
			t.Fatalf("first response %d with Link %q, want 103 with the upstream's Link", hints.StatusCode, hints.Header.Get("Link"))
		}
		final, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(final.Body)
		if final.StatusCode != http.StatusOK || string(body) != "final" {
			t.Fatalf("final response %d %q, want 200 \"final\"", final.StatusCode, body)
		}
		if v := final.Header.Get("Link"); v != "" {
			t.Errorf("final response carries the hint's Link %q", v)
		}
	})
	t.Run("100 continue", func(t *testing.T) {
		c, br := rawConn(t, gw.addr, "POST /upload HTTP/1.1\r\nHost: example.test\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
		cont, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if cont.StatusCode != http.StatusContinue {
			t.Fatalf("got %d before the body, want 100", cont.StatusCode)
		}
		_, _ = io.WriteString(c, "hello")
		var final *http.Response
		for final == nil || final.StatusCode == http.StatusContinue { // a second 100 is allowed
			if final, err = http.ReadResponse(br, nil); err != nil {
				t.Fatal(err)
			}
		}
		body, _ := io.ReadAll(final.Body)
		if string(body) != "read 5" {
			t.Fatalf("got %d %q, want \"read 5\"", final.StatusCode, body)
		}
	})
}

func TestForwardTrailers(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		_, _ = io.WriteString(w, "body")
		w.(http.Flusher).Flush()
		w.Header().Set("X-Checksum", "abc")
	}))
	defer up.Close()
	gw := startGateway(t, oneRoute(hostOf(up)))
	resp, err := http.Get(gw.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || string(body) != "body" {
		t.Fatalf("body %q, %v; want \"body\"", body, err)
	}
	if got := resp.Trailer.Get("X-Checksum"); got != "abc" {
		t.Errorf("trailer X-Checksum %q, want abc", got)
	}
}

func TestForwardBodilessResponses(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/none":
			w.WriteHeader(http.StatusNoContent)
		case "/same":
			w.Header().Set("ETag", `"v1"`)
			w.WriteHeader(http.StatusNotModified)
		default:
			w.Header().Set("Content-Length", "5")
			_, _ = io.WriteString(w, "hello")
		}
	}))
	defer up.Close()
	gw := startGateway(t, oneRoute(hostOf(up)))
	for _, tc := range []struct {
		name, method, path string
		status             int
		length             string
	}{
		{"HEAD keeps the length", http.MethodHead, "/", 200, "5"},
		{"204", http.MethodGet, "/none", 204, ""},
		{"304", http.MethodGet, "/same", 304, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Two on one connection: a body sent where none belongs would
			// break the second.
			req := tc.method + " " + tc.path + " HTTP/1.1\r\nHost: example.test\r\n\r\n"
			_, br := rawConn(t, gw.addr, req+req)
			for i := range 2 {
				resp, err := http.ReadResponse(br, &http.Request{Method: tc.method})
				if err != nil {
					t.Fatalf("response %d: %v", i, err)
				}
				body, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != tc.status || len(body) != 0 || resp.Header.Get("Content-Length") != tc.length {
					t.Fatalf("response %d: %d, body %q, Content-Length %q; want %d, no body, %q", i, resp.StatusCode, body,
						resp.Header.Get("Content-Length"), tc.status, tc.length)
				}
			}
		})
	}
}

// halfCloseUpstream switches to "count" and answers with the number of
// bytes it read once the client's side of the stream has ended.
func halfCloseUpstream(t *testing.T) string {
	t.Helper()
	return drawtest.ServeTCP(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: count\r\n\r\n")
		n, _ := io.Copy(io.Discard, br)
		fmt.Fprintf(c, "read %d", n)
	})
}

func TestForwardUpgradeRelaysHalfClose(t *testing.T) {
	if os.Getenv("DRAWBRIDGE_HTTP1") == proxy.HTTP1Std {
		t.Skip("net/http's Transport gives a 101 body that cannot be half-closed")
	}
	cfg := oneRoute(halfCloseUpstream(t))
	cfg.Listeners["edge"].Routes[0].Upgrades = []string{"count"}
	gw := startGateway(t, cfg)
	c, br := rawConn(t, gw.addr, "GET /count HTTP/1.1\r\nHost: example.test\r\nConnection: Upgrade\r\nUpgrade: count\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("got %d, want 101", resp.StatusCode)
	}
	_, _ = io.WriteString(c, "twelve bytes")
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatal(err)
	}
	if string(rest) != "read 12" {
		t.Fatalf("after the half-close got %q, want \"read 12\"", rest)
	}
}

// A body that breaks half way must not reach the client as if whole.
func TestForwardTruncatedBodyIsNotComplete(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/length" {
			w.Header().Set("Content-Length", "100")
		}
		_, _ = io.WriteString(w, strings.Repeat("x", 10))
		w.(http.Flusher).Flush()
		c, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			c.Close()
		}
	}))
	defer up.Close()
	gw := startGateway(t, oneRoute(hostOf(up)))
	for _, path := range []string{"/length", "/chunked"} {
		t.Run(path, func(t *testing.T) {
			resp, err := http.Get(gw.url + path)
			if err != nil {
				return // refused outright is fine too
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err == nil {
				t.Fatalf("read %d bytes and a clean end, want an error", len(body))
			}
		})
	}
}

func TestForwardClientGoneCancelsUpstream(t *testing.T) {
	canceled := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for {
			if _, err := io.WriteString(w, "data: tick\n\n"); err != nil {
				break
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				close(canceled)
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
		<-r.Context().Done()
		close(canceled)
	}))
	defer up.Close()
	gw := startGateway(t, oneRoute(hostOf(up)))
	c, br := rawConn(t, gw.addr, "GET /events HTTP/1.1\r\nHost: example.test\r\n\r\n")
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
		t.Fatalf("first line %q, %v", line, err)
	}
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	c.Close()
	select {
	case <-canceled:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream request went on after the client left")
	}
}

// The forwarder classifies through errors.go: a dead target is a 502 with
// the JSON body, never the error's text.
func TestForwardErrorsAreMapped(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	gw := startGateway(t, oneRoute(dead))
	resp, err := http.Get(gw.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadGateway || !bytes.Contains(body, []byte(`"error":"bad gateway"`)) {
		t.Fatalf("got %d %s, want 502 with the JSON error", resp.StatusCode, body)
	}
	if bytes.Contains(body, []byte("refused")) || bytes.Contains(body, []byte(dead)) {
		t.Errorf("the client sees internal detail: %s", body)
	}
}
