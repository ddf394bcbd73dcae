package proxy

import (
	"crypto/tls"
	"fmt"
	"strings"
	"time"
)

// TLS modes of a listener.
const (
	TLSNone        = "none"
	TLSServer      = "server"      // TLS with a server certificate
	TLSMutual      = "mutual"      // TLS, and a client certificate from the internal CA is required
	TLSPassthrough = "passthrough" // tcp only: TLS is not terminated; the SNI is read for routing
)

// ListenerTLS is a listener's TLS setting.
type ListenerTLS struct {
	// Mode is none, server, mutual or passthrough (tcp listeners). Zero means none.
	Mode string `yaml:"mode"`
	// Certificate says where the server certificate comes from: "internal"
	// (issued and renewed by drawbridge's CA), "acme" (public names through
	// certmagic), or "files" (CertFile and KeyFile, reloaded when they
	// change). Zero means internal.
	Certificate string `yaml:"certificate"`
	// Names are the DNS names the certificate is for; with internal
	// certificates the listener's identity is spiffe://<trust domain>/<first name>.
	// Zero: the listener's name.
	Names []string `yaml:"names"`
	// CertFile and KeyFile are PEM files, for certificate: files.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// Allow lists the client identities (SPIFFE IDs, a trailing /* matches
	// a path) a mutual listener admits; others are refused at the handshake
	// (tcp) or with 403 (http). Zero: any certificate from the internal CA.
	Allow []string `yaml:"allow"`
	// Profile is "internal" (TLS 1.3 only) or "edge" (Mozilla's
	// intermediate profile). Zero means internal for mutual, edge for server.
	Profile string `yaml:"profile"`
	// HSTSMaxAge adds Strict-Transport-Security to responses of an http
	// listener with TLS. Zero: no header.
	HSTSMaxAge time.Duration `yaml:"hsts_max_age"`
}

// UpstreamTLS is how drawbridge verifies the targets of an upstream that
// speaks https, tls or postgres. drawbridge always presents its own
// certificate and never falls back to plain text.
type UpstreamTLS struct {
	// Identity is the SPIFFE ID every target must present, e.g.
	// spiffe://drawbridge.internal/api. Zero: the DNS name in ServerName is
	// verified instead.
	Identity string `yaml:"identity"`
	// ServerName is sent as SNI and, without Identity, verified against the
	// certificate's DNS names. Zero: the target's host.
	ServerName string `yaml:"server_name"`
	// CAFile verifies targets against this PEM bundle instead of the
	// internal CA, for upstreams outside drawbridge's trust domain. Zero:
	// the internal CA's trust bundle.
	CAFile string `yaml:"ca_file"`
}

// Profiles of TLS versions and cipher suites.
const (
	ProfileInternal = "internal"
	ProfileEdge     = "edge"
)

// TLSProvider supplies TLS configurations; pki's manager implements it
// through an adapter in cmd. Configs it returns must pick certificates and
// trust bundles per handshake, so renewals apply without a restart.
type TLSProvider interface {
	// ServerTLS returns the configuration of a listener with TLS mode
	// server or mutual.
	ServerTLS(listener string, cfg ListenerTLS) (*tls.Config, error)
	// ClientTLS returns the configuration drawbridge uses toward an
	// upstream's targets (our certificate, their verification).
	ClientTLS(upstream string, cfg UpstreamTLS) (*tls.Config, error)
}

func (t *ListenerTLS) defaults(listener string) {
	setDefault(&t.Mode, TLSNone)
	if t.Mode == TLSNone || t.Mode == TLSPassthrough {
		return
	}
	setDefault(&t.Certificate, "internal")
	if len(t.Names) == 0 {
		t.Names = []string{listener}
	}
	if t.Mode == TLSMutual {
		setDefault(&t.Profile, ProfileInternal)
	} else {
		setDefault(&t.Profile, ProfileEdge)
	}
}

func (t *ListenerTLS) validate(path, protocol string, p *problems) {
	switch t.Mode {
	case TLSNone, TLSServer, TLSMutual:
	case TLSPassthrough:
		if protocol != ProtocolTCP {
			p.add(path+".mode", "passthrough needs a tcp listener (an http or postgres listener must see inside TLS)")
		}
	default:
		p.add(path+".mode", "unknown mode %q (want none, server, mutual or passthrough)", t.Mode)
	}
	if t.Mode == TLSNone || t.Mode == TLSPassthrough {
		if len(t.Allow) > 0 {
			p.add(path+".allow", "identities can only be checked with mode: mutual")
		}
		return
	}
	switch t.Certificate {
	case "internal", "acme":
	case "files":
		if t.CertFile == "" || t.KeyFile == "" {
			p.add(path, "certificate: files needs cert_file and key_file")
		}
	default:
		p.add(path+".certificate", "unknown source %q (want internal, acme or files)", t.Certificate)
	}
	if t.Certificate == "acme" && t.Mode == TLSMutual {
		p.add(path+".certificate", "acme is for public edge names; a mutual listener uses the internal CA")
	}
	if t.Profile != ProfileInternal && t.Profile != ProfileEdge {
		p.add(path+".profile", "unknown profile %q (want internal or edge)", t.Profile)
	}
	for i, id := range t.Allow {
		if !strings.HasPrefix(id, "spiffe://") {
			p.add(fmt.Sprintf("%s.allow[%d]", path, i), "%q is not a SPIFFE ID (spiffe://trust-domain/path)", id)
		}
	}
	if t.HSTSMaxAge < 0 {
		p.add(path+".hsts_max_age", "must be >= 0")
	}
}

func (t *UpstreamTLS) validate(path string, p *problems) {
	if t.Identity != "" && !strings.HasPrefix(t.Identity, "spiffe://") {
		p.add(path+".identity", "%q is not a SPIFFE ID (spiffe://trust-domain/path)", t.Identity)
	}
}

// usesTLS reports whether an upstream protocol is encrypted by drawbridge.
func usesTLS(protocol string) bool {
	return protocol == ProtocolHTTPS || protocol == ProtocolTLS || protocol == ProtocolPostgres
}
