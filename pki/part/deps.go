package part

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/drawbridge-proxy/drawbridge/internal/loop"
)

// Deps are what the PKI's parts take from the outside. The zero value
// works: no logs, no metrics, the system clock.
type Deps struct {
	// Logger receives the PKI's logs and certmagic's (through a zap core
	// writing into the same handler). Nil: discard.
	Logger *slog.Logger
	// Registerer receives the PKI's metrics. Nil: none.
	Registerer prometheus.Registerer
	// Clock is the time used for issuance, renewal decisions of the CA and
	// certificate verification. Nil: time.Now. (certmagic's own leaf
	// renewal schedule runs on the system clock.)
	Clock func() time.Time
}

// Log returns Logger, or a logger that discards when it is nil.
func (d Deps) Log() *slog.Logger {
	if d.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Logger
}

// Now returns Clock, or time.Now when it is nil.
func (d Deps) Now() func() time.Time {
	if d.Clock == nil {
		return time.Now
	}
	return d.Clock
}

// Loop calls fn every interval until ctx ends, recovering and logging a
// panic in fn so one bad pass does not stop maintenance. It returns nil
// when ctx ends.
func Loop(ctx context.Context, log *slog.Logger, what string, interval time.Duration, fn func(context.Context) error) error {
	return loop.Every(ctx, interval, func() {
		_ = loop.Guard(log, what+": panic", func() error {
			if err := fn(ctx); err != nil && ctx.Err() == nil {
				log.Error(what+" failed", "err", err)
			}
			return nil
		})
	})
}
