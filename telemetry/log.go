package telemetry

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/drawbridge-proxy/drawbridge/telemetry/configerr"
)

// LogConfig is the logging section of the configuration file.
type LogConfig struct {
	// Level is the minimum level logged: debug, info, warn or error. Zero
	// means info. Access lines are logged at info.
	Level string `yaml:"level"`
	// FlushInterval bounds how long a log line may wait in the write
	// buffer (lines are batched to save a write per request). Zero means
	// 200ms.
	FlushInterval time.Duration `yaml:"flush_interval"`
	// Format is json (one JSON object per line, for collectors), text
	// (key=value lines for people, as slog's text handler writes them) or
	// auto: text when the log goes to a terminal, JSON otherwise (a
	// container's stdout). The access log follows it. Zero means auto.
	Format string `yaml:"format"`
}

// Log formats.
const (
	FormatJSON = "json"
	FormatText = "text"
	FormatAuto = "auto"
)

// Defaults fills the zero fields of c.
func (c *LogConfig) Defaults() {
	if c.Level == "" {
		c.Level = "info"
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = 200 * time.Millisecond
	}
	if c.Format == "" {
		c.Format = FormatAuto
	}
}

// FormatFor resolves auto for a log written to out: text on a terminal,
// JSON otherwise. json and text stay as they are.
func (c *LogConfig) FormatFor(out io.Writer) string {
	if c.Format != FormatAuto && c.Format != "" {
		return c.Format
	}
	if IsTerminal(out) {
		return FormatText
	}
	return FormatJSON
}

// IsTerminal reports whether w is a character device (a terminal), not a
// file or a pipe.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// Validate reports every problem in c, each naming its key.
func (c *LogConfig) Validate() error {
	var errs configerr.List
	if _, err := parseLevel(c.Level); err != nil {
		errs.Add("level", "%v", err)
	}
	switch c.Format {
	case FormatJSON, FormatText, FormatAuto:
	default:
		errs.Add("format", "unknown format %q (want json, text or auto)", c.Format)
	}
	if c.FlushInterval < 0 || c.FlushInterval > 10*time.Second {
		errs.Add("flush_interval", "must be between 0 and 10s, got %s", c.FlushInterval)
	}
	return errs.Err()
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(s))); err != nil {
		return 0, fmt.Errorf("unknown level %q (want debug, info, warn or error)", s)
	}
	return l, nil
}

// NewLogger returns a logger writing lines to w in cfg's format (auto is
// resolved against w itself: pass the terminal, or resolve it first with
// FormatFor when w is a buffer in front of one), with a dynamic level that
// can be changed later (e.g. on config reload) through the returned LevelVar.
func NewLogger(cfg LogConfig, w io.Writer) (*slog.Logger, *slog.LevelVar, error) {
	cfg.Defaults()
	lvl, err := parseLevel(cfg.Level)
	if err != nil {
		return nil, nil, err
	}
	v := new(slog.LevelVar)
	v.Set(lvl)
	if cfg.FormatFor(w) == FormatText {
		// For people: the time of day to the millisecond is enough.
		return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: v, ReplaceAttr: shortTime})), v, nil
	}
	// slog's handler and JSONLines write to w from many goroutines: each
	// line must reach it whole, in one Write, under one lock for both.
	if _, locked := w.(*LineBuffer); !locked {
		w = &lockedWriter{w: w}
	}
	h := jsonHandler{JSONHandler: slog.NewJSONHandler(w, &slog.HandlerOptions{Level: v}), lines: &JSONLines{out: w}}
	return slog.New(h), v, nil
}

func shortTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey && a.Value.Kind() == slog.KindTime {
		return slog.String(slog.TimeKey, a.Value.Time().Format("15:04:05.000"))
	}
	return a
}

// ParsedLevel is the level Level names (Validate has checked it).
func (c *LogConfig) ParsedLevel() (slog.Level, error) { return parseLevel(c.Level) }

// lockedWriter serialises Writes to an output that does not itself.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
