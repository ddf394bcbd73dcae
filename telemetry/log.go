package telemetry

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
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
}

// Defaults fills the zero fields of c.
func (c *LogConfig) Defaults() {
	if c.Level == "" {
		c.Level = "info"
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = 200 * time.Millisecond
	}
}

// Validate reports every problem in c, each naming its key.
func (c *LogConfig) Validate() error {
	var errs []error
	if _, err := parseLevel(c.Level); err != nil {
		errs = append(errs, fmt.Errorf("level: %w", err))
	}
	if c.FlushInterval < 0 || c.FlushInterval > 10*time.Second {
		errs = append(errs, fmt.Errorf("flush_interval: must be between 0 and 10s, got %s", c.FlushInterval))
	}
	return errors.Join(errs...)
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(s))); err != nil {
		return 0, fmt.Errorf("unknown level %q (want debug, info, warn or error)", s)
	}
	return l, nil
}

// NewLogger returns a logger writing JSON lines to w, with a dynamic level
// that can be changed later (e.g. on config reload) through the returned
// LevelVar.
func NewLogger(cfg LogConfig, w io.Writer) (*slog.Logger, *slog.LevelVar, error) {
	cfg.Defaults()
	lvl, err := parseLevel(cfg.Level)
	if err != nil {
		return nil, nil, err
	}
	v := new(slog.LevelVar)
	v.Set(lvl)
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: v})
	return slog.New(h), v, nil
}

// ParsedLevel is the level Level names (Validate has checked it).
func (c *LogConfig) ParsedLevel() (slog.Level, error) { return parseLevel(c.Level) }
