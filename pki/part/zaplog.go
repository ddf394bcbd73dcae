package part

import (
	"context"
	"log/slog"
	"slices"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Zap returns a zap logger for certmagic that writes into log's handler,
// so certmagic's lines join the gateway's one log stream.
func Zap(log *slog.Logger) *zap.Logger {
	return zap.New(&slogCore{h: log.Handler()})
}

// slogCore is a zapcore.Core over an slog.Handler.
type slogCore struct {
	h slog.Handler
}

var _ zapcore.Core = (*slogCore)(nil)

func slogLevel(l zapcore.Level) slog.Level {
	switch {
	case l <= zapcore.DebugLevel:
		return slog.LevelDebug
	case l == zapcore.InfoLevel:
		return slog.LevelInfo
	case l == zapcore.WarnLevel:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

func (c *slogCore) Enabled(l zapcore.Level) bool {
	return c.h.Enabled(context.Background(), slogLevel(l))
}

// stepMessages are certmagic's per-step lines of every obtain and renewal
// (four per certificate, so 16 lines before a demo serves) and of its
// maintenance loop: logged at debug, so info shows what happened
// ("certificate obtained successfully", failures) and not each step.
var stepMessages = map[string]bool{
	"acquiring lock":                             true,
	"lock acquired":                              true,
	"releasing lock":                             true,
	"obtaining certificate":                      true,
	"renewing certificate":                       true,
	"started background certificate maintenance": true,
	"stopped background certificate maintenance": true,
}

// levelOf is the slog level an entry is logged at.
func levelOf(e zapcore.Entry) slog.Level {
	if e.Level == zapcore.InfoLevel && stepMessages[e.Message] {
		return slog.LevelDebug
	}
	return slogLevel(e.Level)
}

func (c *slogCore) With(fields []zapcore.Field) zapcore.Core {
	return &slogCore{h: c.h.WithAttrs(zapAttrs(fields))}
}

func (c *slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.h.Enabled(context.Background(), levelOf(e)) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *slogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	r := slog.NewRecord(e.Time, levelOf(e), e.Message, 0)
	if e.LoggerName != "" {
		r.AddAttrs(slog.String("logger", e.LoggerName))
	}
	r.AddAttrs(zapAttrs(fields)...)
	return c.h.Handle(context.Background(), r)
}

func (c *slogCore) Sync() error { return nil }

// zapAttrs converts zap fields to slog attributes in a stable order.
func zapAttrs(fields []zapcore.Field) []slog.Attr {
	if len(fields) == 0 {
		return nil
	}
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fields {
		f.AddTo(enc)
	}
	keys := make([]string, 0, len(enc.Fields))
	for k := range enc.Fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	attrs := make([]slog.Attr, 0, len(keys))
	for _, k := range keys {
		attrs = append(attrs, slog.Any(k, enc.Fields[k]))
	}
	return attrs
}

// ZapLogger is Zap over Log, with component set: the logger to give
// certmagic.
func (d Deps) ZapLogger(component string) *zap.Logger {
	return Zap(d.Log().With("component", component))
}
