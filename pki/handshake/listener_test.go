package handshake_test

import (
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
	"github.com/drawbridge-proxy/drawbridge/pki/handshake"
	"github.com/drawbridge-proxy/drawbridge/pki/pkitest"
)

func serverConfig(t *testing.T) (*tls.Config, *tls.Config) {
	ca := pkitest.NewCA(t, "drawbridge.internal")
	srv := &tls.Config{Certificates: []tls.Certificate{ca.Leaf(t, "api", "localhost")}, MinVersion: tls.VersionTLS13}
	cli := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", MinVersion: tls.VersionTLS13}
	return srv, cli
}

// A client that never finishes its handshake does not hold up another:
// Accept hands out the finished one while the stalled one waits.
func TestAcceptSkipsAStalledHandshake(t *testing.T) {
	srv, cli := serverConfig(t)
	ln := handshake.NewListener(drawtest.Listen(t), srv, handshake.Options{Timeout: 5 * time.Second})
	defer ln.Close()

	stalled, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()

	errc := make(chan error, 1)
	go func() {
		c, err := tls.Dial("tcp", ln.Addr().String(), cli)
		if err == nil {
			_, err = c.Write([]byte("x"))
			c.Close()
		}
		errc <- err
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tc, ok := c.(*tls.Conn)
	if !ok {
		t.Fatalf("Accept returned %T, want *tls.Conn", c)
	}
	if !tc.ConnectionState().HandshakeComplete {
		t.Error("Accept returned a connection whose handshake is not complete")
	}
	if err := <-errc; err != nil {
		t.Errorf("client: %v", err)
	}
}

// A handshake that fails (or outlasts Timeout) is reported to Failed and
// never returned by Accept.
func TestFailedHandshakesAreReported(t *testing.T) {
	srv, _ := serverConfig(t)
	var (
		mu     sync.Mutex
		failed []error
	)
	ln := handshake.NewListener(drawtest.Listen(t), srv, handshake.Options{
		Timeout: 200 * time.Millisecond,
		Failed: func(_ net.Addr, err error) {
			mu.Lock()
			defer mu.Unlock()
			failed = append(failed, err)
		},
	})
	defer ln.Close()

	// A client that does not trust the server's CA aborts the handshake.
	stranger := &tls.Config{RootCAs: pkitest.NewCA(t, "elsewhere").Pool(), ServerName: "localhost"}
	if c, err := tls.Dial("tcp", ln.Addr().String(), stranger); err == nil {
		c.Close()
		t.Fatal("a client trusting another CA finished the handshake")
	}
	// A client that sends nothing runs into the timeout.
	silent, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()

	drawtest.WaitFor(t, "two reported failures", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(failed) == 2
	})
}

// Close is idempotent, ends Accept with net.ErrClosed, and closes the
// inner listener.
func TestCloseEndsAccept(t *testing.T) {
	srv, _ := serverConfig(t)
	inner := drawtest.Listen(t)
	ln := handshake.NewListener(inner, srv, handshake.Options{MaxPending: 1})
	accepted := make(chan error, 1)
	go func() {
		_, err := ln.Accept()
		accepted <- err
	}()
	if err := ln.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := ln.Close(); err != nil {
		t.Errorf("second Close: got %v, want nil", err)
	}
	select {
	case err := <-accepted:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close: got %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Accept did not return after Close")
	}
	if _, err := net.DialTimeout("tcp", inner.Addr().String(), time.Second); err == nil {
		t.Error("the inner listener still accepts after Close")
	}
}

// Close ends a handshake in progress at once, not when its timeout passes.
func TestCloseEndsPendingHandshakes(t *testing.T) {
	srv, cli := serverConfig(t)
	ln := handshake.NewListener(drawtest.Listen(t), srv, handshake.Options{Timeout: time.Hour})
	silent, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	// Connections are accepted in order: once a later one is handed out,
	// the silent one is handshaking.
	go func() {
		if c, err := tls.Dial("tcp", ln.Addr().String(), cli); err == nil {
			_, _ = c.Write([]byte("x"))
			c.Close()
		}
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	closed := make(chan error, 1)
	go func() { closed <- ln.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for a pending handshake (timeout 1h) instead of ending it")
	}
	_ = silent.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); err == nil {
		t.Error("the pending client's connection is still open after Close")
	}
}
