package secret

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/drawbridge-proxy/drawbridge/telemetry/configerr"
)

// MaxSize bounds a secret value; anything larger is not a passphrase or token.
const MaxSize = 64 << 10

// Ref is where a secret's value comes from.
type Ref struct {
	Kind string // "file" or "env"
	Path string // file path, or environment variable name
}

func (r Ref) String() string { return r.Kind + ":" + r.Path }

// ErrNotRef means a configuration value is not a secret reference; most
// often a secret was written into the file itself.
var ErrNotRef = errors.New(`not a secret reference: write "file:/run/secrets/NAME" (or, for development, "env:NAME"), never the value itself`)

// ParseRef reads "file:/abs/path" or "env:NAME".
func ParseRef(s string) (Ref, error) {
	kind, rest, ok := strings.Cut(s, ":")
	if !ok {
		return Ref{}, ErrNotRef
	}
	switch kind {
	case "file":
		if !filepath.IsAbs(rest) || filepath.Clean(rest) != rest {
			return Ref{}, fmt.Errorf("file secret %q: want an absolute, clean path such as /run/secrets/NAME", rest)
		}
		return Ref{Kind: "file", Path: rest}, nil
	case "env":
		if rest == "" || strings.ContainsAny(rest, "= \t\n") {
			return Ref{}, fmt.Errorf("env secret %q: want an environment variable name", rest)
		}
		return Ref{Kind: "env", Path: rest}, nil
	}
	return Ref{}, ErrNotRef
}

// normalize turns file content into the secret's value: one trailing
// newline (what `echo value > file` leaves) is dropped; empty, oversized
// or NUL-holding content is refused, because it is a mistake, not a secret.
func normalize(content []byte) ([]byte, error) {
	if len(content) > MaxSize {
		return nil, fmt.Errorf("is %d bytes; a secret is at most %d", len(content), MaxSize)
	}
	v := bytes.TrimSuffix(content, []byte("\n"))
	v = bytes.TrimSuffix(v, []byte("\r"))
	if len(v) == 0 {
		return nil, errors.New("is empty")
	}
	if bytes.IndexByte(v, 0) >= 0 {
		return nil, errors.New("holds a NUL byte")
	}
	return v, nil
}

// Config is the secrets section of the configuration file.
type Config struct {
	// PollInterval is how often file secrets are re-read (their directory
	// is watched too). Zero means DefaultInterval (5s).
	PollInterval time.Duration `yaml:"poll_interval"`
}

// Defaults fills the zero fields of c.
func (c *Config) Defaults() {
	if c.PollInterval == 0 {
		c.PollInterval = DefaultInterval
	}
}

// Validate returns the problems of c as a configerr.List.
func (c *Config) Validate() error {
	var errs configerr.List
	if c.PollInterval < 100*time.Millisecond {
		errs.Add("poll_interval", "must be at least 100ms, got %s", c.PollInterval)
	}
	return errs.Err()
}
