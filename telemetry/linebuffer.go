package telemetry

import (
	"bufio"
	"io"
	"sync"
	"time"
)

// LineBuffer batches log lines into fewer writes. A busy gateway writes an
// access-log line per request, and one write system call per line costs
// more than the rest of the line's handling; nginx buffers its access log
// for the same reason. Lines go out when the buffer fills, every flush
// interval, and on Close, so at most an interval of lines waits. Each
// Write must be whole lines (slog's handlers write one line per call).
type LineBuffer struct {
	mu   sync.Mutex // guards w
	w    *bufio.Writer
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// NewLineBuffer buffers up to size bytes for out and flushes every interval.
func NewLineBuffer(out io.Writer, size int, interval time.Duration) *LineBuffer {
	b := &LineBuffer{w: bufio.NewWriterSize(out, size), stop: make(chan struct{}), done: make(chan struct{})}
	go b.flushEvery(interval)
	return b
}

// Write queues whole lines.
func (b *LineBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	// A line larger than what is left goes out after what is queued, not
	// split across two writes.
	if len(p) > b.w.Available() && b.w.Buffered() > 0 {
		if err := b.w.Flush(); err != nil {
			return 0, err
		}
	}
	return b.w.Write(p)
}

// Flush writes out what is queued.
func (b *LineBuffer) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.w.Flush()
}

// Close stops the periodic flush and writes out what is queued. It is idempotent.
func (b *LineBuffer) Close() error {
	b.once.Do(func() {
		close(b.stop)
		<-b.done
	})
	return b.Flush()
}

func (b *LineBuffer) flushEvery(interval time.Duration) {
	defer close(b.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			_ = b.Flush() // a failing stdout has nowhere to report to
		}
	}
}
