package telemetry

import (
	"log/slog"
	"sync"
	"time"
)

// Default budget of a LogLimiter: lines per kind per window.
const (
	defaultLogBurst  = 10
	defaultLogWindow = 10 * time.Second
	maxLogKinds      = 256 // kinds beyond this share one budget, so the map stays bounded
)

// LogLimiter lets a few log lines of each kind through per window and
// counts the rest. Lines that a peer can cause (refused handshakes, denied
// requests, refused enrollments) go through one, so a scanner or a client
// retrying in a loop cannot drown the log stream or fill the disk; metrics
// and the audit log still count every event. The zero value is ready: 10
// lines per kind per 10 seconds.
type LogLimiter struct {
	// Burst is how many lines of a kind pass per Window. Zero: 10.
	Burst int
	// Window is the period Burst applies to. Zero: 10s.
	Window time.Duration
	// Now is the clock. Zero: time.Now.
	Now func() time.Time

	mu    sync.Mutex // guards kinds
	kinds map[string]*logWindow
}

type logWindow struct {
	start      time.Time
	passed     int
	suppressed int
}

// Allow says whether a line of kind may be written now. When it may, and
// lines of that kind were held back before it, the returned attribute says
// how many ("suppressed": N); otherwise the attribute is empty, which slog
// leaves out.
func (l *LogLimiter) Allow(kind string) (bool, slog.Attr) {
	burst, window, now := l.Burst, l.Window, time.Now
	if burst <= 0 {
		burst = defaultLogBurst
	}
	if window <= 0 {
		window = defaultLogWindow
	}
	if l.Now != nil {
		now = l.Now
	}
	t := now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.kinds == nil {
		l.kinds = map[string]*logWindow{}
	}
	w, ok := l.kinds[kind]
	if !ok {
		if len(l.kinds) >= maxLogKinds {
			kind = "" // the overflow budget
			w = l.kinds[kind]
		}
		if w == nil {
			w = &logWindow{start: t}
			l.kinds[kind] = w
		}
	}
	if t.Sub(w.start) >= window {
		w.start, w.passed = t, 0
	}
	if w.passed >= burst {
		w.suppressed++
		return false, slog.Attr{}
	}
	w.passed++
	var attr slog.Attr
	if w.suppressed > 0 {
		attr = slog.Int("suppressed", w.suppressed)
		w.suppressed = 0
	}
	return true, attr
}
