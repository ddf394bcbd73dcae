package drawtest

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// Listen returns a TCP listener on 127.0.0.1 with a port the kernel chose;
// it is closed when the test ends.
func Listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := new(net.ListenConfig).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

// FreeAddr returns a loopback address that was free a moment ago: for a
// server the test starts later, or a target nothing listens on.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := new(net.ListenConfig).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Serve accepts connections on ln until the test ends, and runs handle on
// each in its own goroutine, closing the connection after. When the test
// ends, ln and every connection still open are closed and Serve waits for
// its handlers, so none outlives the test.
func Serve(t testing.TB, ln net.Listener, handle func(net.Conn)) {
	t.Helper()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex // guards open
		open = map[net.Conn]bool{}
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					mu.Lock()
					delete(open, c)
					mu.Unlock()
					_ = c.Close()
				}()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for c := range open {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
}

// ServeTCP serves handle on a new loopback listener (see Serve) and
// returns its address.
func ServeTCP(t testing.TB, handle func(net.Conn)) string {
	t.Helper()
	ln := Listen(t)
	Serve(t, ln, handle)
	return ln.Addr().String()
}

// Echo runs a TCP echo server until the test ends and returns its address.
func Echo(t testing.TB) string {
	t.Helper()
	return ServeTCP(t, func(c net.Conn) { _, _ = io.Copy(c, c) })
}

// Greeting is what Greet writes.
const Greeting = "ok\n"

// Greet writes Greeting and waits (five seconds at most) for the client to
// close. On a TLS server connection the write runs the handshake first, so
// a client sees a refused certificate on its first read.
func Greet(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(c, Greeting)
	_, _ = c.Read(make([]byte, 1))
}

// DialGreeting connects to addr with TLS cfg and reads Greet's greeting. An
// error means the handshake failed, or the server's verification of the
// client certificate did (TLS 1.3 shows that only on the first read).
func DialGreeting(addr string, cfg *tls.Config) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := (&tls.Dialer{Config: cfg}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, len(Greeting))
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != Greeting {
		return fmt.Errorf("got greeting %q, want %q", buf, Greeting)
	}
	return nil
}
