package part_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
	"github.com/drawbridge-proxy/drawbridge/pki/part"
)

func TestZeroDepsWork(t *testing.T) {
	var d part.Deps
	d.Log().Info("dropped") // a nil Logger discards instead of panicking
	if now := d.Now()(); time.Since(now) > time.Minute || time.Until(now) > time.Minute {
		t.Errorf("zero Deps' clock says %v, want about now", now)
	}
	fixed := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	if got := (part.Deps{Clock: func() time.Time { return fixed }}).Now()(); !got.Equal(fixed) {
		t.Errorf("got %v, want the injected clock's %v", got, fixed)
	}
}

// certmagic's lines reach the gateway's one JSON stream with our levels:
// its per-step lines at debug, the rest as zap logged them.
func TestZapLoggerJoinsTheLogStream(t *testing.T) {
	var buf drawtest.Buffer
	log := jsonLogger(&buf)
	z := part.Deps{Logger: log}.ZapLogger("certmagic")
	z.Info("acquiring lock", zap.String("lock", "issue_cert_api"))
	z.Info("certificate obtained successfully", zap.String("identifier", "api"))
	z.Warn("renewal failed", zap.Int("attempt", 2))

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want 3:\n%s", len(lines), buf.String())
	}
	want := []struct{ level, msg, key, value string }{
		{"DEBUG", "acquiring lock", "lock", "issue_cert_api"},
		{"INFO", "certificate obtained successfully", "identifier", "api"},
		{"WARN", "renewal failed", "attempt", "2"},
	}
	for i, w := range want {
		var m map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &m); err != nil {
			t.Fatalf("line %d is not JSON: %v", i, err)
		}
		if m["level"] != w.level || m["msg"] != w.msg || m["component"] != "certmagic" {
			t.Errorf("line %d: got level %v msg %v component %v, want %s %q certmagic", i, m["level"], m["msg"], m["component"], w.level, w.msg)
		}
		if got := jsonText(m[w.key]); got != w.value {
			t.Errorf("line %d: %s = %s, want %s", i, w.key, got, w.value)
		}
	}
}

// Loop keeps calling fn after an error and after a panic, and returns nil
// once ctx ends.
func TestLoopSurvivesFailuresAndPanics(t *testing.T) {
	var buf drawtest.Buffer
	var calls atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- part.Loop(ctx, jsonLogger(&buf), "CA maintenance", time.Millisecond, func(context.Context) error {
			switch calls.Add(1) {
			case 1:
				return errors.New("storage unavailable")
			case 2:
				panic("bad state")
			}
			return nil
		})
	}()
	drawtest.WaitFor(t, "a third pass", func() bool { return calls.Load() >= 3 })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Loop returned %v, want nil when ctx ends", err)
	}
	for _, want := range []string{`"msg":"CA maintenance failed"`, `"err":"storage unavailable"`, `"msg":"CA maintenance: panic"`, `"panic":"bad state"`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("logs lack %s:\n%s", want, buf.String())
		}
	}
}
