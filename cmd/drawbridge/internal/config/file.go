package config

import (
	"fmt"
	"maps"
	"net"
	"slices"
	"time"

	"github.com/drawbridge-proxy/drawbridge/cmd/drawbridge/internal/secret"
	"github.com/drawbridge-proxy/drawbridge/proxy"
	"github.com/drawbridge-proxy/drawbridge/telemetry"
	"github.com/drawbridge-proxy/drawbridge/telemetry/audit"
	"github.com/drawbridge-proxy/drawbridge/telemetry/configerr"
)

// File is the whole configuration file.
type File struct {
	// The data plane: listeners, upstreams, shutdown_grace, access_log.
	proxy.Config `yaml:",inline"`
	// Admin is the listener for /livez, /readyz, /metrics, /status and /status.json.
	Admin AdminConfig `yaml:"admin"`
	// Logging sets the log level.
	Logging telemetry.LogConfig `yaml:"logging"`
	// Tracing configures OpenTelemetry tracing; off by default.
	Tracing telemetry.TracingConfig `yaml:"tracing"`
	// Audit configures the security audit log; off by default.
	Audit audit.Config `yaml:"audit"`
	// PKI is drawbridge's certificate authority, or with pki.enroll the
	// enrollment of an instance without the CA key. Zero (absent): no TLS.
	PKI *PKIConfig `yaml:"pki"`
	// Secrets says how often file secrets are re-read.
	Secrets secret.Config `yaml:"secrets"`
	// ShutdownDelay is how long a stopping gateway keeps serving with
	// /readyz failing before it drains (shutdown_grace), so a load balancer
	// that checks /readyz takes it out of rotation first. Read at start.
	// Zero: drain at once.
	ShutdownDelay time.Duration `yaml:"shutdown_delay"`

	// Source names where the file was read from; set by Parse.
	Source string `yaml:"-"`
	// LoadedAt is when Parse accepted it.
	LoadedAt time.Time `yaml:"-"`
}

// AdminConfig is the operator-facing listener.
type AdminConfig struct {
	// Address is host:port of the admin listener. Zero means
	// 127.0.0.1:9090; keep it off public networks.
	Address string `yaml:"address"`
	// TokenFile names a file holding a bearer token that /metrics, /status
	// and /status.json then require (as "Authorization: Bearer TOKEN", or
	// as the password of HTTP basic auth so a browser can log in). /livez
	// and /readyz stay open for health checks. Zero: no token.
	TokenFile string `yaml:"token_file"`
}

// DefaultAdminAddress is where the admin listener binds unless told otherwise.
const DefaultAdminAddress = "127.0.0.1:9090"

// Defaults fills every default, section by section.
func (f *File) Defaults() {
	f.Config.Defaults()
	if f.Admin.Address == "" {
		f.Admin.Address = DefaultAdminAddress
	}
	f.Logging.Defaults()
	f.Tracing.Defaults()
	f.Audit.Defaults()
	f.Secrets.Defaults()
	if f.PKI != nil {
		f.PKI.Defaults()
	}
}

// Validate returns every problem of every section, each with its full key
// path, as a configerr.List.
func (f *File) Validate() error {
	var errs configerr.List
	// Before the data plane's own problems, so that on a set_secret key
	// both a bad reference and a clash with set read in that order.
	validateSecretRefs(f, &errs)
	errs.Nest("", f.Config.Validate())
	if _, _, err := net.SplitHostPort(f.Admin.Address); err != nil {
		errs.Add("admin.address", "%q is not host:port", f.Admin.Address)
	}
	if f.ShutdownDelay < 0 {
		errs.Add("shutdown_delay", "must be >= 0, got %s", f.ShutdownDelay)
	}
	for _, l := range f.Listeners {
		if l.Address == f.Admin.Address {
			errs.Add("admin.address", "%s is also used by listener %q", f.Admin.Address, l.Name)
		}
	}
	errs.Nest("logging", f.Logging.Validate())
	errs.Nest("tracing", f.Tracing.Validate())
	errs.Nest("audit", f.Audit.Validate())
	errs.Nest("secrets", f.Secrets.Validate())
	if f.PKI != nil {
		errs.Nest("pki", f.PKI.Validate())
		if a := f.PKI.EnrollmentListener.Address; a != "" {
			if a == f.Admin.Address {
				errs.Add("pki.enrollment_listener.address", "%s is also the admin address", a)
			}
			for _, l := range f.Listeners {
				if l.Address == a {
					errs.Add("pki.enrollment_listener.address", "%s is also used by listener %q", a, l.Name)
				}
			}
		}
	}
	validateTLSUse(f, &errs)
	return errs.Err()
}

// validateSecretRefs checks the form of every set_secret reference: the
// data plane only carries them, and the secret package reads them.
func validateSecretRefs(f *File, errs *configerr.List) {
	for _, name := range slices.Sorted(maps.Keys(f.Listeners)) {
		for i, r := range f.Listeners[name].Routes {
			path := fmt.Sprintf("listeners.%s.routes[%d]", name, i)
			checkRefs(path+".request_headers", r.RequestHeaders, errs)
			checkRefs(path+".response_headers", r.ResponseHeaders, errs)
		}
	}
}

func checkRefs(path string, h proxy.HeaderOps, errs *configerr.List) {
	for _, header := range slices.Sorted(maps.Keys(h.SetSecret)) {
		if _, err := secret.ParseRef(h.SetSecret[header]); err != nil {
			errs.Add(path+".set_secret."+header, "%v", err)
		}
	}
}
