package pki

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/drawbridge-proxy/drawbridge/pki/ca"
	"github.com/drawbridge-proxy/drawbridge/pki/cert"
	"github.com/drawbridge-proxy/drawbridge/pki/enroll"
	"github.com/drawbridge-proxy/drawbridge/pki/identity"
	"github.com/drawbridge-proxy/drawbridge/pki/store"
	"github.com/drawbridge-proxy/drawbridge/telemetry/configerr"
)

// Defaults for Config fields left at their zero value.
const (
	DefaultStateDir             = "/var/lib/drawbridge/pki"
	DefaultTrustDomain          = identity.DefaultTrustDomain
	DefaultRootLifetime         = 10 * 365 * 24 * time.Hour
	DefaultIntermediateLifetime = 30 * 24 * time.Hour
	DefaultLeafLifetime         = 24 * time.Hour
	DefaultRenewalRatio         = 1.0 / 3
	DefaultRootRotateBefore     = 365 * 24 * time.Hour
	DefaultCheckInterval        = time.Minute
)

// Config configures the PKI: where its state lives, how it is sealed, and
// the lifetimes of the CA and its certificates. Load it from YAML, call
// Defaults, then Validate.
type Config struct {
	// StateDir holds the CA state and certmagic's storage.
	// Zero: DefaultStateDir.
	StateDir string `yaml:"state_dir"`

	// PassphraseFile is the path of a file (a Docker secret) whose content
	// seals every private key in StateDir. A trailing newline is ignored.
	// Zero: none, which Validate refuses.
	PassphraseFile string `yaml:"passphrase_file"`

	// TrustDomain is the SPIFFE trust domain: identities are
	// spiffe://<trust_domain>/<service>. Zero: DefaultTrustDomain.
	TrustDomain string `yaml:"trust_domain"`

	// RootLifetime is the validity of a new root. Zero: 10 years.
	RootLifetime time.Duration `yaml:"root_lifetime"`

	// IntermediateLifetime is the validity of an intermediate, which is
	// renewed when RenewalRatio of it is left. Zero: 30 days.
	IntermediateLifetime time.Duration `yaml:"intermediate_lifetime"`

	// LeafLifetime is the validity of a leaf certificate; a leaf never
	// outlives its intermediate. Zero: 24 hours.
	LeafLifetime time.Duration `yaml:"leaf_lifetime"`

	// RenewalRatio is the share of a certificate's life left when it is
	// renewed (leaves and the intermediate). Zero: 1/3.
	RenewalRatio float64 `yaml:"renewal_ratio"`

	// RootRotateBefore starts an automatic root rotation this long before
	// the root expires. Zero: one year.
	RootRotateBefore time.Duration `yaml:"root_rotate_before"`

	// PermittedDNSDomains are the DNS name constraints of the intermediate:
	// leaves may carry DNS names equal to or below one of these. Zero: the
	// trust domain and "localhost".
	PermittedDNSDomains []string `yaml:"permitted_dns_domains"`

	// CheckInterval is how often the CA and certmagic check what to renew.
	// Zero: one minute.
	CheckInterval time.Duration `yaml:"check_interval"`

	// EnrollServer configures the enrollment endpoint this CA serves.
	// Zero: no bootstrap tokens (renewal by certificate still works).
	EnrollServer enroll.ServerConfig `yaml:"enrollment"`

	// EnrollClient makes this instance one without the CA key (a sidecar,
	// a second gateway): its certificates come from another instance's
	// enrollment endpoint. Zero (absent): this instance is the CA.
	EnrollClient *enroll.ClientConfig `yaml:"enroll"`
}

// Defaults fills every zero field with its default.
func (c *Config) Defaults() {
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	if c.TrustDomain == "" {
		c.TrustDomain = DefaultTrustDomain
	}
	if c.RootLifetime == 0 {
		c.RootLifetime = DefaultRootLifetime
	}
	if c.IntermediateLifetime == 0 {
		c.IntermediateLifetime = DefaultIntermediateLifetime
	}
	if c.LeafLifetime == 0 {
		c.LeafLifetime = DefaultLeafLifetime
	}
	if c.RenewalRatio == 0 {
		c.RenewalRatio = DefaultRenewalRatio
	}
	if c.RootRotateBefore == 0 {
		c.RootRotateBefore = DefaultRootRotateBefore
	}
	if len(c.PermittedDNSDomains) == 0 {
		c.PermittedDNSDomains = []string{c.TrustDomain, "localhost"}
	}
	if c.CheckInterval == 0 {
		c.CheckInterval = DefaultCheckInterval
	}
	if c.EnrollClient != nil {
		if c.EnrollClient.TrustDomain == "" {
			c.EnrollClient.TrustDomain = c.TrustDomain
		}
		c.EnrollClient.Defaults()
	}
}

// Validate returns every problem at once as a configerr.List, each
// path relative to the pki section. Call it after Defaults.
func (c *Config) Validate() error {
	var errs configerr.List
	if c.StateDir == "" {
		errs.Add("state_dir", "required")
	} else if !filepath.IsAbs(c.StateDir) {
		errs.Add("state_dir", "must be an absolute path, got %q", c.StateDir)
	}
	if c.PassphraseFile == "" {
		errs.Add("passphrase_file", "required: the path of a file holding at least %d bytes that seal the CA keys", store.MinPassphraseLength)
	}
	if err := identity.CheckTrustDomain(c.TrustDomain); err != nil {
		errs.Add("trust_domain", "%v", err)
	}
	c.validateLifetimes(&errs)
	for i, d := range c.PermittedDNSDomains {
		if err := ca.CheckDNSName(d); err != nil {
			errs.Add(fmt.Sprintf("permitted_dns_domains[%d]", i), "%v", err)
		}
	}
	validateEnrollServer(&c.EnrollServer, "enrollment", c.TrustDomain, &errs)
	if c.EnrollClient != nil {
		errs.Nest("enroll", c.EnrollClient.Validate())
		if c.EnrollClient.TrustDomain != c.TrustDomain {
			errs.Add("enroll.trust_domain", "%q differs from trust_domain %q", c.EnrollClient.TrustDomain, c.TrustDomain)
		}
		if len(c.EnrollServer.Tokens) > 0 {
			errs.Add("enrollment.tokens", "an enrolling instance (enroll is set) has no CA to serve enrollment")
		}
	}
	return errs.Err()
}

// validateLifetimes checks the intervals, lifetimes and ratios against
// each other.
func (c *Config) validateLifetimes(errs *configerr.List) {
	if c.CheckInterval < time.Second {
		errs.Add("check_interval", "must be >= 1s, got %v", c.CheckInterval)
	}
	if c.LeafLifetime < time.Minute {
		errs.Add("leaf_lifetime", "must be >= 1m, got %v", c.LeafLifetime)
	} else if c.CheckInterval > 0 && c.LeafLifetime < 10*c.CheckInterval {
		// certmagic renews anything expiring within 5 check intervals.
		errs.Add("leaf_lifetime", "must be >= 10 * check_interval (%v), got %v", 10*c.CheckInterval, c.LeafLifetime)
	}
	if c.IntermediateLifetime < time.Hour {
		errs.Add("intermediate_lifetime", "must be >= 1h, got %v", c.IntermediateLifetime)
	} else if c.IntermediateLifetime < 2*c.LeafLifetime {
		errs.Add("intermediate_lifetime", "must be >= 2 * leaf_lifetime (%v), got %v", 2*c.LeafLifetime, c.IntermediateLifetime)
	}
	if c.RootLifetime < 2*c.IntermediateLifetime {
		errs.Add("root_lifetime", "must be >= 2 * intermediate_lifetime (%v), got %v", 2*c.IntermediateLifetime, c.RootLifetime)
	}
	if !(c.RenewalRatio > 0 && c.RenewalRatio < 1) {
		errs.Add("renewal_ratio", "must be > 0 and < 1, got %v", c.RenewalRatio)
	}
	if c.RootRotateBefore <= c.IntermediateLifetime || c.RootRotateBefore >= c.RootLifetime {
		errs.Add("root_rotate_before", "must be > intermediate_lifetime (%v) and < root_lifetime (%v), got %v",
			c.IntermediateLifetime, c.RootLifetime, c.RootRotateBefore)
	}
}

func validateEnrollServer(e *enroll.ServerConfig, prefix, trustDomain string, errs *configerr.List) {
	seen := map[string]int{}
	for i, t := range e.Tokens {
		p := fmt.Sprintf("%s.tokens[%d]", prefix, i)
		id, err := identity.Parse(t.Identity)
		switch {
		case err != nil:
			errs.Add(p+".identity", "%v", err)
		case id.TrustDomain() != trustDomain:
			errs.Add(p+".identity", "%q is outside trust_domain %q", t.Identity, trustDomain)
		case id.Path() == "":
			errs.Add(p+".identity", "%q names no service", t.Identity)
		}
		if t.TokenFile == "" {
			errs.Add(p+".token_file", "required")
		} else if j, dup := seen[t.TokenFile]; dup {
			errs.Add(p+".token_file", "same file as tokens[%d]; a token is bound to one identity", j)
		} else {
			seen[t.TokenFile] = i
		}
		for k, d := range t.DNSNames {
			if err := ca.CheckDNSName(d); err != nil {
				errs.Add(fmt.Sprintf("%s.dns_names[%d]", p, k), "%v", err)
			}
		}
	}
}

// CA is the CA's part of the configuration.
func (c *Config) CA() ca.Config {
	return ca.Config{
		TrustDomain: c.TrustDomain, RootLifetime: c.RootLifetime, IntermediateLifetime: c.IntermediateLifetime,
		LeafLifetime: c.LeafLifetime, RenewalRatio: c.RenewalRatio, RootRotateBefore: c.RootRotateBefore,
		PermittedDNSDomains: c.PermittedDNSDomains, CheckInterval: c.CheckInterval,
	}
}

// Manager is the certificate Manager's part of the configuration.
func (c *Config) Manager() cert.Config {
	return cert.Config{CheckInterval: c.CheckInterval, RenewalRatio: c.RenewalRatio}
}
