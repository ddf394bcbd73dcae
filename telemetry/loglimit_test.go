package telemetry

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLogLimiter(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	l := &LogLimiter{Burst: 3, Window: time.Second, Now: func() time.Time { return now }}
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	emit := func(kind string) {
		if ok, attr := l.Allow(kind); ok {
			log.Warn("refused", "kind", kind, attr)
		}
	}
	for range 100 {
		emit("bad_cert")
	}
	emit("no_cert") // another kind has its own budget
	if got := strings.Count(buf.String(), `"kind":"bad_cert"`); got != 3 {
		t.Fatalf("%d lines of a flooding kind in one window, want 3:\n%s", got, buf.String())
	}
	if !strings.Contains(buf.String(), `"kind":"no_cert"`) {
		t.Fatalf("another kind was held back by the first one's flood:\n%s", buf.String())
	}
	if strings.Contains(buf.String(), "suppressed") {
		t.Fatalf("a suppressed count before anything was suppressed:\n%s", buf.String())
	}
	buf.Reset()
	now = now.Add(time.Second)
	emit("bad_cert")
	if !strings.Contains(buf.String(), `"suppressed":97`) {
		t.Fatalf("the first line of the next window should report the 97 held back: %s", buf.String())
	}
}

func TestLogLimiterKindsBounded(t *testing.T) {
	l := &LogLimiter{Burst: 1}
	for i := range 10 * maxLogKinds {
		l.Allow(fmt.Sprintf("kind-%d", i))
	}
	if n := len(l.kinds); n > maxLogKinds+1 {
		t.Fatalf("%d kinds tracked, want at most %d", n, maxLogKinds+1)
	}
	if ok, _ := l.Allow(fmt.Sprintf("kind-%d", 10*maxLogKinds)); ok {
		t.Fatal("a new kind past the bound got its own budget; want it to share the overflow budget, spent already")
	}
}
