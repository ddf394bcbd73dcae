package proxy_test

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// readUntilClosed reads frames until the connection ends or limit passes,
// and reports whether a GOAWAY came and whether the connection closed.
func readUntilClosed(t *testing.T, c io.Reader, setDeadline func(time.Time) error, limit time.Duration) (goaway, closed bool) {
	t.Helper()
	_ = setDeadline(time.Now().Add(limit))
	br := bufio.NewReader(c)
	for {
		var head [9]byte
		if _, err := io.ReadFull(br, head[:]); err != nil {
			return goaway, !strings.Contains(err.Error(), "timeout")
		}
		n := int(head[0])<<16 | int(head[1])<<8 | int(head[2])
		if _, err := io.CopyN(io.Discard, br, int64(n)); err != nil {
			return goaway, !strings.Contains(err.Error(), "timeout")
		}
		if head[3] == 0x7 {
			goaway = true
		}
	}
}

// HTTP/2 header floods: endless CONTINUATION frames (CVE-2023-45288) and a
// header block of thousands of fields end in a refusal or a closed
// connection with bounded work; nothing reaches the upstream, and other
// clients are served meanwhile.
func TestHTTP2HeaderFloods(t *testing.T) {
	var hits atomic.Int64
	addr := h2Gateway(t, countingUpstream(t, &hits), 1000)
	t.Run("CONTINUATION flood", func(t *testing.T) {
		c := h2Dial(t, addr)
		var out bytes.Buffer
		writeFrame(&out, 0x1, 0x0, 1, h2Get("/flood")) // HEADERS without END_HEADERS
		field := bytes.Repeat([]byte{0x00, 0x01, 'x', 0x7f}, 1)
		filler := bytes.Repeat(append(field, bytes.Repeat([]byte{'a'}, 127)...), 100) // ~13 KB of literal fields
		sent := 0
		for range 200 { // 2.6 MB of CONTINUATION, never END_HEADERS
			out.Reset()
			writeFrame(&out, 0x9, 0x0, 1, filler)
			if _, err := c.Write(out.Bytes()); err != nil {
				break // the server closed: that is the point
			}
			sent++
		}
		goaway, closed := readUntilClosed(t, c, c.SetReadDeadline, 5*time.Second)
		t.Logf("sent %d CONTINUATION frames before the server stopped reading; goaway %v, closed %v", sent, goaway, closed)
		if !closed {
			t.Error("the connection stayed open under a CONTINUATION flood")
		}
	})
	t.Run("many header fields", func(t *testing.T) {
		c := h2Dial(t, addr)
		block := h2Get("/many")
		for range 20000 { // 20000 indexed-name literals: past max_header_bytes
			block = append(block, 0x40, 0x01, 'x', 0x01, 'y')
		}
		var out bytes.Buffer
		for len(block) > 0 { // HEADERS then CONTINUATION, 16 KiB each
			n := min(len(block), 16384)
			typ, flags := byte(0x9), byte(0)
			if out.Len() == 0 {
				typ = 0x1
			}
			if n == len(block) {
				flags = 0x4 | 0x1 // END_HEADERS | END_STREAM
			}
			writeFrame(&out, typ, flags, 1, block[:n])
			block = block[n:]
		}
		_, _ = c.Write(out.Bytes())
		_, _ = readUntilClosed(t, c, c.SetReadDeadline, 2*time.Second)
	})
	if n := hits.Load(); n != 0 {
		t.Errorf("the upstream got %d requests from the floods, want 0", n)
	}
	// Others are served.
	c := h2Dial(t, addr)
	var out bytes.Buffer
	writeFrame(&out, 0x1, 0x5, 1, h2Get("/ok"))
	_, _ = c.Write(out.Bytes())
	waitHits(t, &hits, 1)
}

func waitHits(t *testing.T, hits *atomic.Int64, n int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for hits.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("upstream got %d requests, want %d", hits.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
