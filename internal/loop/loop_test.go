package loop

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestGuardRecoversAndLogs(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	err := Guard(log, "sweep panicked", func() error { panic("boom") }, "target", "10.0.0.1:80")
	if err == nil || err.Error() != "panic: boom" {
		t.Fatalf("got %v, want panic: boom", err)
	}
	for _, want := range []string{"level=ERROR", `msg="sweep panicked"`, "target=10.0.0.1:80", "panic=boom"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log %q lacks %q", logs.String(), want)
		}
	}
}

func TestGuardPassesErrorsThrough(t *testing.T) {
	want := errors.New("lookup failed")
	if got := Guard(nil, "unused", func() error { return want }); !errors.Is(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if got := Guard(nil, "unused", func() error { panic(want) }); got == nil {
		t.Error("a panic with a nil logger returned nil, want an error")
	}
}

func TestEveryTicksUntilCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := make(chan struct{}, 10)
	done := make(chan error, 1)
	go func() {
		done <- Every(ctx, time.Millisecond, func() {
			select {
			case calls <- struct{}{}:
			default:
			}
		})
	}()
	for range 3 {
		select {
		case <-calls:
		case <-time.After(10 * time.Second):
			t.Fatal("Every did not call fn")
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("got %v, want nil when ctx ends", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Every did not return after ctx ended")
	}
}
