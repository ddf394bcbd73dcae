package telemetry

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

type countingWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	if !bytes.HasSuffix(p, []byte("\n")) {
		panic("a write ended mid-line: " + string(p))
	}
	return c.buf.Write(p)
}

func (c *countingWriter) state() (string, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String(), c.writes
}

func TestLineBufferBatchesWholeLines(t *testing.T) {
	out := &countingWriter{}
	b := NewLineBuffer(out, 1024, time.Hour)
	line := strings.Repeat("x", 99) + "\n"
	for i := 0; i < 100; i++ {
		if _, err := b.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	got, writes := out.state()
	if got != strings.Repeat(line, 100) {
		t.Fatalf("lost or reordered lines: %d bytes", len(got))
	}
	if writes > 12 {
		t.Errorf("%d writes for 100 lines in a 1 KiB buffer, want about 10", writes)
	}
}

func TestLineBufferFlushesOnItsInterval(t *testing.T) {
	out := &countingWriter{}
	b := NewLineBuffer(out, 1<<16, 20*time.Millisecond)
	defer b.Close()
	_, _ = b.Write([]byte("one line\n"))
	deadline := time.Now().Add(5 * time.Second)
	for {
		if got, _ := out.state(); got == "one line\n" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the line was never flushed")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
