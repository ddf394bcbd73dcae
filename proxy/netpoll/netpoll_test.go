package netpoll

import (
	"errors"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Bytes that arrived before the wait began (the poller has already seen
// them) must end the wait at once, not at the read deadline.
func TestWaitReadableSeesBytesThatArrivedBefore(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	for i := range 20 {
		if _, err := client.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // the poller sees the bytes before the wait
		_ = server.SetReadDeadline(time.Now().Add(2 * time.Second))
		start := time.Now()
		ok, err := WaitReadable(server)
		if !ok || err != nil {
			t.Fatalf("round %d: WaitReadable = %v, %v after %s; want readable at once", i, ok, err, time.Since(start))
		}
		if took := time.Since(start); took > time.Second {
			t.Fatalf("round %d: WaitReadable took %s for bytes already there", i, took)
		}
		var b [1]byte
		if _, err := server.Read(b[:]); err != nil {
			t.Fatal(err)
		}
	}
	// And with nothing there it waits, until the deadline.
	_ = server.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := WaitReadable(server); err == nil {
		t.Error("WaitReadable returned with nothing to read before the deadline")
	}
}

func pair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// Each park ends in exactly one call of ready: readable when bytes come
// (bytes already there included), not readable at the deadline.
func TestWaiterWakesOnBytesAndAtTheDeadline(t *testing.T) {
	client, server := pair(t)
	var w Waiter
	defer w.Close()
	got := make(chan bool, 4)
	ready := func(readable bool) { got <- readable }
	for i := range 200 {
		before := i%2 == 0 // the bytes are there before the park, or come after
		if before {
			if _, err := client.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Millisecond)
		}
		if err := w.Park(server, time.Now().Add(10*time.Second), ready); err != nil {
			t.Fatal(err)
		}
		if !before {
			if _, err := client.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case readable := <-got:
			if !readable {
				t.Fatalf("round %d: woken as not readable", i)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: not woken by bytes (there before the park: %v)", i, before)
		}
		var b [1]byte
		if _, err := server.Read(b[:]); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	if err := w.Park(server, start.Add(100*time.Millisecond), ready); err != nil {
		t.Fatal(err)
	}
	select {
	case readable := <-got:
		if readable || time.Since(start) < 100*time.Millisecond {
			t.Fatalf("woken readable=%v after %s; want the deadline, at 100ms", readable, time.Since(start))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the deadline never fired")
	}
	select {
	case r := <-got:
		t.Fatalf("ready called twice (second: %v)", r)
	case <-time.After(50 * time.Millisecond):
	}
}

// Unpark takes a parked connection back: ready is not called, not by
// bytes that come later nor at the deadline.
func TestUnparkTakesTheConnectionBack(t *testing.T) {
	client, server := pair(t)
	var w Waiter
	defer w.Close()
	called := make(chan bool, 1)
	if err := w.Park(server, time.Now().Add(50*time.Millisecond), func(r bool) { called <- r }); err != nil {
		t.Fatal(err)
	}
	if !w.Parked() || !w.Unpark() {
		t.Fatal("Unpark of a parked connection failed")
	}
	if w.Unpark() {
		t.Fatal("a second Unpark succeeded")
	}
	_, _ = client.Write([]byte("x"))
	select {
	case r := <-called:
		t.Fatalf("ready(%v) called after Unpark", r)
	case <-time.After(200 * time.Millisecond):
	}
}

// A connection that cannot be parked says so.
func TestParkWithoutASocket(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	var w Waiter
	if err := w.Park(a, time.Now().Add(time.Second), func(bool) {}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Park(net.Pipe) = %v, want ErrUnsupported", err)
	}
}

// The poller's goroutine runs only while connections are registered, so a
// server that closed every connection leaves no goroutine behind.
func TestPollerGoroutineEndsWithTheLastConnection(t *testing.T) {
	looping := func() bool {
		buf := make([]byte, 1<<20)
		return strings.Contains(string(buf[:runtime.Stack(buf, true)]), "netpoll.(*poller).loop")
	}
	for round := range 3 {
		_, server := pair(t)
		var w Waiter
		if err := w.Park(server, time.Now().Add(time.Minute), func(bool) {}); err != nil {
			t.Fatal(err)
		}
		for start := time.Now(); !looping(); time.Sleep(time.Millisecond) { // it may not have run yet
			if time.Since(start) > 5*time.Second {
				t.Fatalf("round %d: no poller goroutine with a parked connection", round)
			}
		}
		if !w.Unpark() {
			t.Fatal("Unpark failed")
		}
		w.Close()
		deadline := time.Now().Add(5 * time.Second)
		for looping() {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: the poller goroutine outlived its last connection", round)
			}
			time.Sleep(time.Millisecond)
		}
	}
}
