package listen

import (
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
)

type counter struct{ opened, closed atomic.Int32 }

func (c *counter) Opened() { c.opened.Add(1) }
func (c *counter) Closed() { c.closed.Add(1) }

func dial(t *testing.T, addr net.Addr) net.Conn {
	t.Helper()
	c, err := new(net.Dialer).DialContext(context.Background(), "tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// acceptAsync accepts on ln in the background; the channel gets the result.
func acceptAsync(ln net.Listener) <-chan net.Conn {
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(ch)
			return
		}
		ch <- c
	}()
	return ch
}

func TestLimitHoldsPastMax(t *testing.T) {
	var n counter
	ln := Limit(drawtest.Listen(t), 1, &n)
	dial(t, ln.Addr())
	first, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	dial(t, ln.Addr()) // the kernel completes the connect; Accept must not return it yet
	second := acceptAsync(ln)
	select {
	case <-second:
		t.Fatal("Accept returned a second connection while the first was open (max 1)")
	case <-time.After(50 * time.Millisecond):
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	c, ok := <-second
	if !ok {
		t.Fatal("Accept failed after a slot was released")
	}
	defer c.Close()
	if got, want := n.opened.Load(), int32(2); got != want {
		t.Errorf("opened = %d, want %d", got, want)
	}
	if got, want := n.closed.Load(), int32(1); got != want {
		t.Errorf("closed = %d, want %d", got, want)
	}
}

func TestLimitReleasesOnceOnClose(t *testing.T) {
	var n counter
	ln := Limit(drawtest.Listen(t), 2, &n)
	dial(t, ln.Addr())
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		_ = c.Close() // a second release would block on an empty slot channel, or free a slot twice
	}
	if got, want := n.closed.Load(), int32(1); got != want {
		t.Fatalf("closed = %d after three Closes, want %d", got, want)
	}
	// Both slots are free again: two connections at once, not three.
	dial(t, ln.Addr())
	dial(t, ln.Addr())
	dial(t, ln.Addr())
	for range 2 {
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	third := acceptAsync(ln)
	select {
	case <-third:
		t.Fatal("a third connection was accepted with max 2: a slot was released twice")
	case <-time.After(50 * time.Millisecond):
	}
	_ = ln.Close() // ends the pending Accept once it gets a slot
	go func() {
		for c := range third {
			_ = c.Close()
		}
	}()
}

func TestLimitAcceptErrorFreesSlot(t *testing.T) {
	inner := drawtest.Listen(t)
	ln := Limit(inner, 1, nil)
	_ = inner.Close()
	for range 2 { // a slot held by the failed Accept would block the second call forever
		if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept on a closed listener: %v, want net.ErrClosed", err)
		}
	}
}

func TestSlotConnCloseWrite(t *testing.T) {
	ln := Limit(drawtest.Listen(t), 1, nil)
	client := dial(t, ln.Addr())
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cw, ok := c.(interface{ CloseWrite() error })
	if !ok {
		t.Fatal("accepted connection has no CloseWrite")
	}
	if _, err := c.Write([]byte("bye")); err != nil {
		t.Fatal(err)
	}
	if err := cw.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(client)
	if err != nil || string(got) != "bye" {
		t.Fatalf("client read %q, %v; want \"bye\" then EOF", got, err)
	}
	// The read side stays open after a half-close.
	if _, err := client.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	if _, err := io.ReadFull(c, buf); err != nil || buf[0] != 'x' {
		t.Fatalf("server read %q, %v after CloseWrite; want \"x\"", buf, err)
	}
}

func TestSlotConnSyscallConn(t *testing.T) {
	ln := Limit(drawtest.Listen(t), 1, nil)
	dial(t, ln.Addr())
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc, ok := c.(syscall.Conn)
	if !ok {
		t.Fatal("accepted connection is not a syscall.Conn")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var fd uintptr
	if err := raw.Control(func(f uintptr) { fd = f }); err != nil || fd == 0 {
		t.Fatalf("Control: fd %d, %v; want the socket's descriptor", fd, err)
	}
}

// pipeListener hands out one end of a net.Pipe: a conn with neither a
// socket nor half-close.
type pipeListener struct {
	net.Listener
	peer net.Conn
}

func (l *pipeListener) Accept() (net.Conn, error) {
	a, b := net.Pipe()
	l.peer = b
	return a, nil
}

func TestSlotConnWithoutSocket(t *testing.T) {
	var n counter
	pl := &pipeListener{}
	ln := Limit(pl, 1, &n)
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.(syscall.Conn).SyscallConn(); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("SyscallConn over a pipe: %v, want errors.ErrUnsupported", err)
	}
	// Without half-close, CloseWrite closes: the peer sees EOF and the slot is freed.
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if _, err := pl.peer.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("peer read after CloseWrite: %v, want EOF", err)
	}
	if got := n.closed.Load(); got != 1 {
		t.Errorf("closed = %d after CloseWrite without half-close, want 1", got)
	}
}
