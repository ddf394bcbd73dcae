package static

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"

	"github.com/drawbridge-proxy/drawbridge/telemetry/configerr"
)

// Config is a route's `static` section.
type Config struct {
	// Root is the directory served, an absolute path. Required. It is
	// opened anew for every request, so a symlink such as
	// /srv/www/current can be switched to a new release at any time.
	Root string `yaml:"root"`
	// Index is the file served for a directory. Zero means index.html.
	Index string `yaml:"index"`
	// SPAFallback is a file, relative to Root, served with 200 instead of a
	// 404 to GET and HEAD requests that look like page navigations (the
	// last path segment has no extension, or Accept names text/html), so
	// a single-page app's client-side routes load. A missing /app.js still
	// gets a 404. Zero: no fallback.
	SPAFallback string `yaml:"spa_fallback"`
	// NotFound is a file, relative to Root, served with status 404 when no
	// file matches. Zero: the proxy's JSON 404.
	NotFound string `yaml:"not_found"`
}

// Defaults fills the zero fields that have a default.
func (c *Config) Defaults() {
	if c.Index == "" {
		c.Index = "index.html"
	}
}

// Validate reports every problem at once, each naming its key relative
// to the section ("root: is required"). It does not look at the file
// system; New does.
func (c *Config) Validate() error {
	var errs configerr.List
	if c.Root == "" {
		errs.Add("root", "is required")
	} else if !filepath.IsAbs(c.Root) {
		errs.Add("root", "%q must be an absolute path", c.Root)
	}
	for _, f := range []struct{ key, val string }{{"index", c.Index}, {"spa_fallback", c.SPAFallback}, {"not_found", c.NotFound}} {
		if f.val == "" {
			continue
		}
		if err := checkName(f.val, f.key == "index"); err != nil {
			errs.Add(f.key, "%v", err)
		}
	}
	return errs.Err()
}

// checkName accepts a clean relative file name with no dot segment or
// dotfile; base says it must also be a single name without a directory.
func checkName(name string, base bool) error {
	rel := strings.TrimPrefix(name, "/")
	switch {
	case path.Clean(rel) != rel || rel == "." || strings.HasPrefix(rel, "../") || rel == "..":
		return fmt.Errorf("%q must be a clean path inside root", name)
	case hidden(rel):
		return fmt.Errorf("%q is a dotfile, which is never served", name)
	case base && strings.Contains(rel, "/"):
		return fmt.Errorf("%q must be a file name without a directory", name)
	}
	return nil
}
