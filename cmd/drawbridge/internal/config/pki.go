package config

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"strings"

	"github.com/drawbridge-proxy/drawbridge/pki"
	"github.com/drawbridge-proxy/drawbridge/pki/identity"
	"github.com/drawbridge-proxy/drawbridge/pki/source"
	"github.com/drawbridge-proxy/drawbridge/proxy"
	"github.com/drawbridge-proxy/drawbridge/telemetry/configerr"
)

// DefaultIdentity is the service name drawbridge presents as unless
// pki.identity says otherwise.
const DefaultIdentity = "drawbridge"

// PKIConfig is the pki section: the PKI package's own keys (state dir,
// passphrase, trust domain, lifetimes, enrollment tokens, or enroll for an
// instance without the CA key) and what the binary adds around it.
type PKIConfig struct {
	pki.Config `yaml:",inline"`

	// Identity is this drawbridge's service name: it presents
	// spiffe://<trust_domain>/<identity> to upstreams (unless an upstream's
	// tls.client_identity says otherwise) and on the enrollment listener.
	// Zero: "drawbridge".
	Identity string `yaml:"identity"`

	// EnrollmentListener serves the CA's enrollment endpoint. Zero: not
	// served (sidecars cannot enroll with this instance).
	EnrollmentListener EnrollmentListenerConfig `yaml:"enrollment_listener"`

	// ACME gets certificates for listeners with tls.certificate: acme
	// (their tls.names) from a public ACME CA. Zero (absent): no listener
	// may use acme.
	ACME *source.ACMEConfig `yaml:"acme"`
}

// EnrollmentListenerConfig is where sidecars and other gateways enroll.
type EnrollmentListenerConfig struct {
	// Address is host:port of an HTTPS listener serving POST
	// /v1/pki/enroll, TLS 1.3, with a certificate for pki.identity; a
	// client certificate is asked for but optional (renewals present one,
	// first enrollments a bootstrap token). Zero: no enrollment listener.
	Address string `yaml:"address"`
	// Names are the DNS names in its certificate: the host enrolling
	// instances dial (the host of their pki.enroll.url). Each must be within
	// permitted_dns_domains. Zero: ["localhost"].
	Names []string `yaml:"names"`
}

// Defaults fills the section's defaults, the PKI package's first.
func (c *PKIConfig) Defaults() {
	c.Config.Defaults()
	if c.Identity == "" {
		c.Identity = DefaultIdentity
	}
	if c.EnrollmentListener.Address != "" && len(c.EnrollmentListener.Names) == 0 {
		c.EnrollmentListener.Names = []string{"localhost"}
	}
}

// OwnID is the SPIFFE ID of this drawbridge.
func (c *PKIConfig) OwnID() identity.ID {
	id, _ := identity.New(c.TrustDomain, c.Identity)
	return id
}

// Validate returns every problem of the section, keys relative to it.
func (c *PKIConfig) Validate() error {
	errs := configerr.Of(c.Config.Validate())
	if c.PassphraseFile != "" && !filepath.IsAbs(c.PassphraseFile) {
		errs.Add("passphrase_file", "must be an absolute path (a Docker secret such as /run/secrets/ca_passphrase), got %q", c.PassphraseFile)
	}
	if _, err := identity.New(c.TrustDomain, c.Identity); err != nil {
		errs.Add("identity", "%q is not a SPIFFE path: %v", c.Identity, err)
	}
	if el := c.EnrollmentListener; el.Address != "" {
		if _, _, err := net.SplitHostPort(el.Address); err != nil {
			errs.Add("enrollment_listener.address", "%q is not host:port", el.Address)
		}
		if c.EnrollClient != nil {
			errs.Add("enrollment_listener.address", "an enrolling instance (enroll is set) has no CA to serve enrollment")
		}
		for i, n := range el.Names {
			if !c.DNSPermitted(n) {
				errs.Add(fmt.Sprintf("enrollment_listener.names[%d]", i), "%q is not a DNS name within permitted_dns_domains %v", n, c.PermittedDNSDomains)
			}
		}
	}
	return errs.Err()
}

// DNSPermitted reports whether name may be a DNS name of a certificate
// from this CA: equal to or below a permitted DNS domain.
func (c *PKIConfig) DNSPermitted(name string) bool {
	if name == "" || strings.ContainsAny(name, " */:") || strings.ToLower(name) != name || net.ParseIP(name) != nil {
		return false
	}
	for _, d := range c.PermittedDNSDomains {
		if name == d || strings.HasSuffix(name, "."+d) {
			return true
		}
	}
	return false
}

// CertNames splits a listener's tls.names for an internal certificate:
// the first names the identity, and every name within
// permitted_dns_domains becomes a DNS name of the certificate.
func (c *PKIConfig) CertNames(names []string) (identity.ID, []string, error) {
	if len(names) == 0 {
		return identity.ID{}, nil, errors.New("no names")
	}
	id, err := identity.New(c.TrustDomain, names[0])
	if err != nil {
		return identity.ID{}, nil, configerr.FieldError{Path: "names[0]", Msg: fmt.Sprintf(
			"%q names the certificate's identity spiffe://%s/%s, which is not a valid SPIFFE ID: %v", names[0], c.TrustDomain, names[0], err)}
	}
	var dns []string
	for i, n := range names {
		switch {
		case c.DNSPermitted(n):
			if !slices.Contains(dns, n) {
				dns = append(dns, n)
			}
		case i > 0:
			return identity.ID{}, nil, configerr.FieldError{Path: fmt.Sprintf("names[%d]", i),
				Msg: fmt.Sprintf("%q is not a DNS name within pki.permitted_dns_domains %v", n, c.PermittedDNSDomains)}
		}
	}
	return id, dns, nil
}

// validateTLSUse checks the data plane's TLS settings against the pki
// section: that one exists when TLS is used, and that identities are in
// its trust domain.
func validateTLSUse(f *File, errs *configerr.List) {
	var acmeNames []string
	for _, name := range slices.Sorted(maps.Keys(f.Listeners)) {
		l := f.Listeners[name]
		path := "listeners." + name + ".tls"
		if l.TLS.Mode != proxy.TLSServer && l.TLS.Mode != proxy.TLSMutual {
			continue
		}
		if f.PKI == nil {
			ownCAUse(path, l.TLS, errs)
			continue
		}
		switch l.TLS.Certificate {
		case proxy.CertificateInternal:
			if _, _, err := f.PKI.CertNames(l.TLS.Names); err != nil {
				errs.Nest(path, err)
			}
		case proxy.CertificateACME:
			if f.PKI.ACME == nil {
				errs.Add(path+".certificate", "acme needs a pki.acme section (email, agree_to_terms, ...)")
			}
			acmeNames = append(acmeNames, l.TLS.Names...)
		}
		if l.TLS.ClientCAFile != "" {
			continue // identities from the operator's CA may be in any trust domain
		}
		checkPatternsIn(f.PKI.TrustDomain, path+".allow", l.TLS.Allow, errs)
		for i, r := range l.Routes {
			checkPatternsIn(f.PKI.TrustDomain, fmt.Sprintf("listeners.%s.routes[%d].allow", name, i), r.Allow, errs)
		}
	}
	if f.PKI != nil && f.PKI.ACME != nil {
		// The names come from the listeners using acme, and pki.acme.names.
		ac := *f.PKI.ACME
		ac.Names = append(slices.Clone(ac.Names), acmeNames...)
		errs.Nest("pki.acme", ac.Validate())
	}
	for _, name := range slices.Sorted(maps.Keys(f.Upstreams)) {
		u := f.Upstreams[name]
		path := "upstreams." + name + ".tls"
		if u.Protocol != proxy.ProtocolHTTPS && u.Protocol != proxy.ProtocolTLS && u.Protocol != proxy.ProtocolPostgres {
			continue
		}
		if f.PKI == nil {
			errs.Add("upstreams."+name+".protocol", "%s needs a pki section (drawbridge's own certificate, the trust bundle)", u.Protocol)
			continue
		}
		for _, kv := range [][2]string{{"identity", u.TLS.Identity}, {"client_identity", u.TLS.ClientIdentity}} {
			if id, err := identity.Parse(kv[1]); err == nil && id.TrustDomain() != f.PKI.TrustDomain {
				if kv[0] == "identity" && u.TLS.CAFile != "" {
					continue // verified against ca_file, outside the trust domain
				}
				errs.Add(path+"."+kv[0], "%q is outside pki.trust_domain %q", kv[1], f.PKI.TrustDomain)
			}
		}
		if u.TLS.Identity == "" && u.TLS.ServerName == "" && UpstreamHost(u.Targets) == "" {
			errs.Add(path, "set identity (the SPIFFE ID the targets present) or server_name: the targets are IP addresses or several names, so there is no name to verify")
		}
	}
}

// ownCAUse names what a listener's TLS would need drawbridge's own CA for,
// in a file without a pki section: an internal or ACME certificate, or
// client certificates verified without client_ca_file.
func ownCAUse(path string, t proxy.ListenerTLS, errs *configerr.List) {
	if t.Certificate != proxy.CertificateFiles {
		errs.Add(path+".certificate", "%s needs a pki section (drawbridge's own CA, or ACME's storage); "+
			"without one, use certificate: files with cert_file and key_file", t.Certificate)
	}
	if t.Mode == proxy.TLSMutual && t.ClientCAFile == "" {
		errs.Add(path+".client_ca_file", "mode mutual without a pki section needs client_ca_file "+
			"(the CA that issued the client certificates)")
	}
}

// UpstreamHost returns the host name all targets share, or "" when they
// are IP addresses or several names.
func UpstreamHost(targets []string) string {
	host := ""
	for _, t := range targets {
		h, _, err := net.SplitHostPort(t)
		if err != nil || net.ParseIP(h) != nil || (host != "" && h != host) {
			return ""
		}
		host = h
	}
	return host
}

func checkPatternsIn(td, path string, patterns []string, errs *configerr.List) {
	for i, p := range patterns {
		id, err := identity.Parse(strings.TrimSuffix(p, "/*"))
		if err == nil && id.TrustDomain() != td {
			errs.Add(fmt.Sprintf("%s[%d]", path, i), "%q is outside pki.trust_domain %q: it could never match", p, td)
		}
	}
}
