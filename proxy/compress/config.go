package compress

import (
	"fmt"
	"mime"
	"slices"
	"strings"

	"github.com/drawbridge-proxy/drawbridge/telemetry/configerr"
)

// Codings drawbridge can encode with, in its order of preference.
const (
	Zstd = "zstd"
	Gzip = "gzip"
)

// Config is a route's `compression` section.
type Config struct {
	// Encodings offered, in the server's preference for ties of the
	// client's q-values. Zero means [zstd, gzip].
	Encodings []string `yaml:"encodings"`
	// Types are the media types compressed: exact ("application/json") or
	// a whole top-level type ("text/*"). Zero means DefaultTypes.
	Types []string `yaml:"types"`
	// MinSize is the smallest body, in bytes, worth compressing; a body
	// of unknown length is held back up to this size to decide, unless the
	// handler flushes first (then it is compressed). Zero means 1024.
	MinSize int64 `yaml:"min_size"`
}

// DefaultTypes are text formats that compress well; images, video and
// archives are already compressed and only cost CPU.
var DefaultTypes = []string{
	"text/*", "application/json", "application/javascript", "application/xml", "application/xhtml+xml",
	"application/manifest+json", "application/ld+json", "application/problem+json", "application/wasm",
	"image/svg+xml", "application/x-ndjson", "application/graphql-response+json",
}

// Defaults fills the zero fields that have a default.
func (c *Config) Defaults() {
	if len(c.Encodings) == 0 {
		c.Encodings = []string{Zstd, Gzip}
	}
	if len(c.Types) == 0 {
		c.Types = slices.Clone(DefaultTypes)
	}
	if c.MinSize == 0 {
		c.MinSize = 1024
	}
}

// Validate reports every problem at once, each naming its key relative to
// the section.
func (c *Config) Validate() error {
	var errs configerr.List
	seen := map[string]bool{}
	for i, e := range c.Encodings {
		if e != Zstd && e != Gzip {
			errs.Add(fmt.Sprintf("encodings[%d]", i), "unknown encoding %q (want zstd or gzip)", e)
		}
		if seen[e] {
			errs.Add(fmt.Sprintf("encodings[%d]", i), "%s is listed twice", e)
		}
		seen[e] = true
	}
	for i, t := range c.Types {
		if err := checkType(t); err != nil {
			errs.Add(fmt.Sprintf("types[%d]", i), "%v", err)
		}
	}
	if c.MinSize < 0 {
		errs.Add("min_size", "must be >= 0, got %d", c.MinSize)
	}
	return errs.Err()
}

func checkType(t string) error {
	if major, ok := strings.CutSuffix(t, "/*"); ok && major != "" && !strings.ContainsAny(major, "/*; ") {
		return nil
	}
	mt, params, err := mime.ParseMediaType(t)
	if err != nil || len(params) > 0 || mt != t || strings.Contains(mt, "*") {
		return fmt.Errorf("%q is not a lower-case media type (type/subtype or type/*)", t)
	}
	return nil
}
