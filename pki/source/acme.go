package source

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3"

	"github.com/drawbridge-proxy/drawbridge/pki/cert"
	"github.com/drawbridge-proxy/drawbridge/pki/part"
	"github.com/drawbridge-proxy/drawbridge/telemetry/configerr"
)

// ACMEConfig configures certificates for public edge names from an ACME CA.
type ACMEConfig struct {
	// Names are the public DNS names to get certificates for.
	// Zero: invalid.
	Names []string `yaml:"names"`
	// Email is the ACME account contact. Zero: none.
	Email string `yaml:"email"`
	// CA is the ACME directory URL. Zero: Let's Encrypt's production CA.
	CA string `yaml:"ca"`
	// TrustedRootsFile holds PEM roots to trust the ACME server with (a
	// private ACME CA, or Pebble in tests). Zero: the system roots.
	TrustedRootsFile string `yaml:"trusted_roots_file"`
	// TLSALPNPort is the port where the ACME CA reaches this gateway for
	// the tls-alpn-01 challenge: the edge listener's port, answered by
	// GetCertificate. Zero: 443; negative: tls-alpn-01 disabled (http-01
	// only, through a redirect_to_https listener).
	TLSALPNPort int `yaml:"tls_alpn_port"`
	// HTTPPort is where the http-01 challenge is answered, through
	// HTTPChallengeHandler on the plain-HTTP listener. Zero: 80;
	// negative: http-01 disabled.
	HTTPPort int `yaml:"http_port"`
	// AgreeToTerms accepts the CA's terms of service. Zero: false, which
	// Validate refuses: the operator must agree explicitly.
	AgreeToTerms bool `yaml:"agree_to_terms"`
}

// Validate returns every problem at once as a configerr.List.
func (c *ACMEConfig) Validate() error {
	var errs configerr.List
	if len(c.Names) == 0 {
		errs.Add("names", "at least one public name is required")
	}
	for i, n := range c.Names {
		if !certmagic.SubjectQualifiesForCert(n) {
			errs.Add(fmt.Sprintf("names[%d]", i), "%q is not a certificate name", n)
		}
	}
	if !c.AgreeToTerms {
		errs.Add("agree_to_terms", "must be true to use an ACME CA")
	}
	if c.TLSALPNPort > 65535 {
		errs.Add("tls_alpn_port", "must be a port, got %d", c.TLSALPNPort)
	}
	if c.HTTPPort > 65535 {
		errs.Add("http_port", "must be a port, got %d", c.HTTPPort)
	}
	if c.HTTPPort < 0 && c.TLSALPNPort < 0 {
		errs.Add("tls_alpn_port", "http-01 is disabled too (http_port < 0); leave one challenge on")
	}
	return errs.Err()
}

// ACME manages public edge certificates through certmagic's ACME issuer,
// in the same sealed storage (account and certificate keys are sealed).
type ACME struct {
	cfg    ACMEConfig
	magic  *certmagic.Config
	cache  *certmagic.Cache
	issuer *certmagic.ACMEIssuer
	once   sync.Once
}

var _ cert.CertSource = (*ACME)(nil)

// NewACME builds the ACME manager. Call Manage to obtain certificates and
// Close to stop renewals. checkInterval is how often renewals are checked
// (zero: certmagic's default of 10 minutes).
func NewACME(cfg ACMEConfig, storage certmagic.Storage, checkInterval time.Duration, deps part.Deps) (*ACME, error) {
	a := &ACME{cfg: cfg}
	zl := deps.ZapLogger("certmagic.acme")
	a.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return a.magic, nil },
		RenewCheckInterval: checkInterval,
		Logger:             zl,
	})
	a.magic = certmagic.New(a.cache, certmagic.Config{Storage: storage, Logger: zl, KeySource: certmagic.StandardKeyGenerator{KeyType: certmagic.P256}})
	tmpl := certmagic.ACMEIssuer{
		CA:                   cfg.CA,
		Email:                cfg.Email,
		Agreed:               cfg.AgreeToTerms,
		AltTLSALPNPort:       max(cfg.TLSALPNPort, 0),
		Logger:               zl,
		DisableHTTPChallenge: cfg.HTTPPort < 0,
		// Nothing listens for it: http-01 only.
		DisableTLSALPNChallenge: cfg.TLSALPNPort < 0,
	}
	if cfg.HTTPPort > 0 {
		tmpl.AltHTTPPort = cfg.HTTPPort
	}
	if cfg.TrustedRootsFile != "" {
		b, err := os.ReadFile(cfg.TrustedRootsFile)
		if err != nil {
			a.cache.Stop()
			return nil, fmt.Errorf("trusted_roots_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			a.cache.Stop()
			return nil, fmt.Errorf("trusted_roots_file %q: no PEM certificate", cfg.TrustedRootsFile)
		}
		tmpl.TrustedRoots = pool
	}
	a.issuer = certmagic.NewACMEIssuer(a.magic, tmpl)
	a.magic.Issuers = []certmagic.Issuer{a.issuer}
	return a, nil
}

// Manage obtains (or loads) the certificates for every name and keeps them
// renewed. The edge listener must already be serving GetCertificate on
// tls_alpn_port (or HTTPChallengeHandler on http_port) to answer the
// challenge.
func (a *ACME) Manage(ctx context.Context) error {
	if err := a.magic.ManageSync(ctx, a.cfg.Names); err != nil {
		return fmt.Errorf("acme: %w", err)
	}
	return nil
}

// GetCertificate implements cert.CertSource; it also answers tls-alpn-01
// challenges (RFC 8737).
func (a *ACME) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return a.magic.GetCertificate(hello)
}

// NextProtos is added to a server config using this source, so the
// tls-alpn-01 challenge can negotiate its protocol.
func (a *ACME) NextProtos() []string { return []string{acmez.ACMETLS1Protocol} }

// HTTPChallengeHandler wraps the plain-HTTP listener's handler to answer
// http-01 challenges (RFC 8555, 8.3).
func (a *ACME) HTTPChallengeHandler(next http.Handler) http.Handler {
	return a.issuer.HTTPChallengeHandler(next)
}

// Close stops renewals. It is idempotent.
func (a *ACME) Close() error {
	a.once.Do(a.cache.Stop)
	return nil
}
