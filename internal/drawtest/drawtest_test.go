package drawtest

import (
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

func TestEchoAndCleanup(t *testing.T) {
	var addr string
	var open net.Conn
	t.Run("server", func(t *testing.T) {
		addr = Echo(t)
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(c, "ping"); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("got %q, %v, want the echo", buf, err)
		}
		open = c // left open: the cleanup must end its handler anyway
	})
	defer open.Close()
	_ = open.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := open.Read(make([]byte, 1)); err == nil {
		t.Error("a connection left open outlived its test's server")
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Error("the listener still accepts after its test ended")
	}
}

func TestWaitWithinReturnsTheWait(t *testing.T) {
	var n atomic.Int64
	took := WaitWithin(t, 5*time.Second, "three polls", func() bool { return n.Add(1) >= 3 })
	if took <= 0 || took > 5*time.Second {
		t.Errorf("got %v, want a short positive wait", took)
	}
}

func TestClock(t *testing.T) {
	start := time.Unix(1000, 0)
	c := ClockAt(start)
	c.Advance(time.Minute)
	if got := c.Now(); !got.Equal(start.Add(time.Minute)) {
		t.Errorf("got %v, want %v", got, start.Add(time.Minute))
	}
}
