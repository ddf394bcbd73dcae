package audit

import (
	"path/filepath"

	"github.com/drawbridge-proxy/drawbridge/telemetry/configerr"
)

// Config is the audit section of the configuration file.
type Config struct {
	// Path is the audit file. Zero turns the audit log off. The file is
	// created with mode 0600 and only appended to; keep it on a volume of
	// its own and ship a copy off the host.
	Path string `yaml:"path"`
	// FingerprintKeyFile holds the HMAC key (at least 16 bytes) under which
	// secrets are fingerprinted. Zero means a random key per process, so
	// fingerprints compare only within one run.
	FingerprintKeyFile string `yaml:"fingerprint_key_file"`
}

// Defaults fills the zero fields of c. Every zero value is already its
// default; it exists for symmetry with the other sections.
func (c *Config) Defaults() {}

// Validate reports every problem in c, each naming its key.
func (c *Config) Validate() error {
	var errs configerr.List
	if c.Path != "" && !filepath.IsAbs(c.Path) {
		errs.Add("path", "%q must be absolute", c.Path)
	}
	if c.FingerprintKeyFile != "" && !filepath.IsAbs(c.FingerprintKeyFile) {
		errs.Add("fingerprint_key_file", "%q must be absolute", c.FingerprintKeyFile)
	}
	if c.FingerprintKeyFile != "" && c.Path == "" {
		errs.Add("fingerprint_key_file", "set, but path is empty so the audit log is off")
	}
	return errs.Err()
}
