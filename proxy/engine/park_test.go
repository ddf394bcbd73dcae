package engine

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
)

// These tests drive the park: an idle connection past the hot wait gives
// its goroutine up and waits in proxy/netpoll. They wait for the state
// they need (parked) instead of sleeping for a guessed time.

// parked counts the server's parked connections.
func (s *Server) parked() int {
	n := 0
	for _, c := range s.snapshot() {
		if c.waiter.Parked() {
			n++
		}
	}
	return n
}

func (s *Server) tracked() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func hello(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Path, b)
}

// start serves ln's connections on srv, each from a goroutine of its own
// as the listener does (ServeConn returns when its connection parks).
func start(t *testing.T, cfg Config, tlsCfg *tls.Config) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Handler == nil {
		cfg.Handler = http.HandlerFunc(hello)
	}
	if cfg.hotWait == 0 {
		cfg.hotWait = 20 * time.Millisecond // park soon: these tests drive parks
	}
	srv := New(cfg)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				if tlsCfg != nil {
					tc := tls.Server(c, tlsCfg)
					if tc.Handshake() != nil {
						_ = c.Close()
						return
					}
					c = tc
				}
				srv.ServeConn(c)
			}()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); srv.Close() })
	return srv, ln.Addr().String()
}

type client struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, addr string, tlsCfg *tls.Config) *client {
	t.Helper()
	var c net.Conn
	var err error
	if tlsCfg != nil {
		c, err = tls.Dial("tcp", addr, tlsCfg)
	} else {
		c, err = net.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &client{t: t, c: c, br: bufio.NewReader(c)}
}

func (cl *client) send(raw string) {
	cl.t.Helper()
	if _, err := io.WriteString(cl.c, raw); err != nil {
		cl.t.Fatal(err)
	}
}

// expect reads one response and checks its body.
func (cl *client) expect(want string) {
	cl.t.Helper()
	_ = cl.c.SetReadDeadline(time.Now().Add(3 * time.Second))
	resp, err := http.ReadResponse(cl.br, nil)
	if err != nil {
		cl.t.Fatalf("reading the response for %q: %v", want, err)
	}
	b, _ := io.ReadAll(resp.Body)
	if string(b) != want {
		cl.t.Fatalf("got %q, want %q", b, want)
	}
}

// expectClosed waits for the server to close the connection.
func (cl *client) expectClosed(within time.Duration) time.Duration {
	cl.t.Helper()
	start := time.Now()
	_ = cl.c.SetReadDeadline(start.Add(within))
	_, err := cl.br.ReadByte()
	if err == nil || isTimeout(err) {
		cl.t.Fatalf("connection still open after %s (read: %v)", within, err)
	}
	return time.Since(start)
}

func get(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: a\r\n\r\n" }

func TestParkedConnectionServesItsNextRequests(t *testing.T) {
	srv, addr := start(t, Config{IdleTimeout: 30 * time.Second}, nil)
	cl := dial(t, addr, nil)
	for i := range 5 {
		cl.send(get(fmt.Sprint("/", i)))
		cl.expect(fmt.Sprintf("GET /%d ", i))
		drawtest.WaitWithin(t, 5*time.Second, "the connection to park", func() bool { return srv.parked() == 1 })
	}
	// A body after a park, and a request head that outgrows the small
	// buffer.
	cl.send("POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
	cl.expect("POST /p hello")
	drawtest.WaitWithin(t, 5*time.Second, "the connection to park", func() bool { return srv.parked() == 1 })
	big := "GET /big HTTP/1.1\r\nHost: a\r\nCookie: " + strings.Repeat("c", 20<<10) + "\r\n\r\n"
	cl.send(big + get("/after-big"))
	cl.expect("GET /big ")
	cl.expect("GET /after-big ")
}

// Bytes that arrive after the hot wait gave up and before the connection
// is armed with the poller must wake it at once: the registration is
// level-triggered, so it fires for bytes already there.
func TestBytesArrivingJustBeforeTheParkWakeIt(t *testing.T) {
	var cl *client
	var hooked atomic.Int32
	beforePark := func(c *conn) {
		if hooked.Add(1) != 1 {
			return
		}
		cl.send(get("/raced"))
		waitReadableNow(t, c.sock) // in the socket before the park
	}
	_, addr := start(t, Config{IdleTimeout: 30 * time.Second, beforePark: beforePark}, nil)
	cl = dial(t, addr, nil)
	cl.send(get("/first"))
	cl.expect("GET /first ")
	start := time.Now()
	cl.expect("GET /raced ")
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("the request that arrived before the park was served after %s", took)
	}
	if hooked.Load() == 0 {
		t.Fatal("the connection never reached the park")
	}
}

// waitReadableNow polls the socket (MSG_PEEK, non-blocking) until it has
// bytes.
func waitReadableNow(t *testing.T, c net.Conn) {
	raw, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Error(err)
		return
	}
	for range 1000 {
		n := 0
		_ = raw.Control(func(fd uintptr) {
			var b [1]byte
			n, _, _ = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		})
		if n > 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Error("the client's bytes never reached the server's socket")
}

// Pipelined requests already buffered are served without parking in
// between, and the connection parks after the last.
func TestPipelinedRequestsAreServedBeforeThePark(t *testing.T) {
	srv, addr := start(t, Config{IdleTimeout: 30 * time.Second}, nil)
	cl := dial(t, addr, nil)
	cl.send(get("/a") + "POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi" + get("/c"))
	cl.expect("GET /a ")
	cl.expect("POST /b hi")
	cl.expect("GET /c ")
	drawtest.WaitWithin(t, 5*time.Second, "the connection to park", func() bool { return srv.parked() == 1 })
	cl.send(get("/d") + get("/e"))
	cl.expect("GET /d ")
	cl.expect("GET /e ")
}

func TestParkedConnectionClosesAtItsIdleTimeout(t *testing.T) {
	srv, addr := start(t, Config{IdleTimeout: 300 * time.Millisecond}, nil)
	cl := dial(t, addr, nil)
	sent := time.Now()
	cl.send(get("/"))
	cl.expect("GET / ")
	drawtest.WaitWithin(t, 5*time.Second, "the connection to park", func() bool { return srv.parked() == 1 })
	cl.expectClosed(5 * time.Second)
	if idle := time.Since(sent); idle < 300*time.Millisecond {
		t.Errorf("closed after %s, before the idle timeout", idle)
	}
	drawtest.WaitWithin(t, 5*time.Second, "the connection to be untracked", func() bool { return srv.tracked() == 0 })
}

// A connection that never sends a request parks too, and is closed at the
// read-header timeout.
func TestSilentConnectionParksAndClosesAtTheHeaderTimeout(t *testing.T) {
	srv, addr := start(t, Config{ReadHeaderTimeout: 300 * time.Millisecond}, nil)
	dialed := time.Now()
	cl := dial(t, addr, nil)
	drawtest.WaitWithin(t, 5*time.Second, "the connection to park", func() bool { return srv.parked() == 1 })
	cl.expectClosed(5 * time.Second)
	if took := time.Since(dialed); took < 300*time.Millisecond {
		t.Errorf("closed %s after the dial, before the read-header timeout", took)
	}
	drawtest.WaitWithin(t, 5*time.Second, "the connection to be untracked", func() bool { return srv.tracked() == 0 })
}

func TestShutdownClosesParkedConnections(t *testing.T) {
	srv, addr := start(t, Config{IdleTimeout: 30 * time.Second}, nil)
	var cls []*client
	for i := range 20 {
		cl := dial(t, addr, nil)
		cl.send(get(fmt.Sprint("/", i)))
		cl.expect(fmt.Sprintf("GET /%d ", i))
		cls = append(cls, cl)
	}
	drawtest.WaitWithin(t, 5*time.Second, "every connection to park", func() bool { return srv.parked() == 20 })
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for _, cl := range cls {
		cl.expectClosed(2 * time.Second)
	}
	if n := srv.tracked(); n != 0 {
		t.Errorf("%d connections still tracked after Shutdown", n)
	}
}

func TestCloseClosesParkedConnections(t *testing.T) {
	srv, addr := start(t, Config{IdleTimeout: 30 * time.Second}, nil)
	cl := dial(t, addr, nil)
	cl.send(get("/"))
	cl.expect("GET / ")
	drawtest.WaitWithin(t, 5*time.Second, "the connection to park", func() bool { return srv.parked() == 1 })
	srv.Close()
	cl.expectClosed(2 * time.Second)
	drawtest.WaitWithin(t, 5*time.Second, "the connection to be untracked", func() bool { return srv.tracked() == 0 })
}

// Parked connections hold no goroutine.
func TestParkedConnectionsHoldNoGoroutine(t *testing.T) {
	srv, addr := start(t, Config{IdleTimeout: 30 * time.Second}, nil)
	const n = 200
	before := runtime.NumGoroutine()
	for i := range n {
		cl := dial(t, addr, nil)
		cl.send(get(fmt.Sprint("/", i)))
		cl.expect(fmt.Sprintf("GET /%d ", i))
	}
	drawtest.WaitWithin(t, 5*time.Second, "every connection to park", func() bool { return srv.parked() == n })
	if grew := runtime.NumGoroutine() - before; grew > n/10 {
		t.Errorf("%d goroutines more with %d parked connections", grew, n)
	}
}

// Over TLS the socket's readiness says nothing of records crypto/tls has
// already read: the connection parks only after a read found nothing, and
// pipelined requests in one record are all served.
func TestTLSConnectionsParkAndWake(t *testing.T) {
	ts := httptest.NewUnstartedServer(nil)
	ts.StartTLS() // for its certificate
	ts.Close()
	srvTLS := ts.TLS.Clone()
	srvTLS.NextProtos = nil
	srv, addr := start(t, Config{IdleTimeout: 30 * time.Second}, srvTLS)
	clTLS := &tls.Config{RootCAs: ts.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs, ServerName: "example.com"}
	cl := dial(t, addr, clTLS)
	for i := range 3 {
		cl.send(get(fmt.Sprint("/", i)))
		cl.expect(fmt.Sprintf("GET /%d ", i))
		drawtest.WaitWithin(t, 5*time.Second, "the connection to park", func() bool { return srv.parked() == 1 })
	}
	cl.send(get("/x") + get("/y") + get("/z")) // one write: one record
	cl.expect("GET /x ")
	cl.expect("GET /y ")
	cl.expect("GET /z ")
	drawtest.WaitWithin(t, 5*time.Second, "the connection to park", func() bool { return srv.parked() == 1 })
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	cl.expectClosed(2 * time.Second)
}

func TestPeerClosingAParkedConnectionEndsIt(t *testing.T) {
	srv, addr := start(t, Config{IdleTimeout: 30 * time.Second}, nil)
	cl := dial(t, addr, nil)
	cl.send(get("/"))
	cl.expect("GET / ")
	drawtest.WaitWithin(t, 5*time.Second, "the connection to park", func() bool { return srv.parked() == 1 })
	_ = cl.c.Close()
	drawtest.WaitWithin(t, 5*time.Second, "the connection to be untracked", func() bool { return srv.tracked() == 0 })
}

// Once enough connections have parked and parking has settled, the
// engine hands the memory of the wave back (a collection and
// FreeOSMemory).
func TestMemoryIsReleasedOnceAWaveOfConnectionsHasParked(t *testing.T) {
	oldParks := releaseAfterParks.set(16)
	oldQuiet := releaseQuiet.set(int64(20 * time.Millisecond))
	oldEvery := releaseEvery.set(0)
	t.Cleanup(func() { releaseAfterParks.set(oldParks); releaseQuiet.set(oldQuiet); releaseEvery.set(oldEvery) })
	drawtest.WaitWithin(t, 5*time.Second, "an earlier release watcher to end", func() bool { return !release.checking.Load() })
	release.parks.Store(0)
	before := release.count.Load()
	srv, addr := start(t, Config{IdleTimeout: 30 * time.Second}, nil)
	for i := range 20 {
		cl := dial(t, addr, nil)
		cl.send(get(fmt.Sprint("/", i)))
		cl.expect(fmt.Sprintf("GET /%d ", i))
	}
	drawtest.WaitWithin(t, 5*time.Second, "every connection to park", func() bool { return srv.parked() == 20 })
	drawtest.WaitWithin(t, 5*time.Second, "the release", func() bool { return release.count.Load() > before })
}
