package loop

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// Guard runs fn and returns its error. A panic in fn is logged at error
// level as msg, with attrs and the panic's value under "panic", and
// returned as an error ("panic: <value>") instead of unwinding further. A
// nil log logs nothing.
func Guard(log *slog.Logger, msg string, fn func() error, attrs ...any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if log != nil {
				log.Error(msg, append(attrs, "panic", fmt.Sprint(r))...)
			}
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return fn()
}

// Every calls fn each interval until ctx ends; it returns nil then. The
// first call is one interval after the start. fn runs in Every's goroutine:
// a slow call delays the next tick rather than overlapping it.
func Every(ctx context.Context, interval time.Duration, fn func()) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			fn()
		}
	}
}
