package netpoll

import (
	"net"
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
