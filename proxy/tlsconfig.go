package proxy

import (
	"cmp"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/drawbridge-proxy/drawbridge/pki/identity"
	"github.com/drawbridge-proxy/drawbridge/telemetry/configerr"
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
	// ClientCAFile, with mode mutual, verifies client certificates against
	// this PEM bundle (a CA the operator brings) instead of the internal
	// CA's trust bundle; read at start and on reload. Zero: the internal CA.
	ClientCAFile string `yaml:"client_ca_file"`
	// Allow lists the client identities (SPIFFE IDs, a trailing /* matches
	// a path) a mutual listener admits; others are refused at the handshake
	// (tcp, postgres: the connection is closed) or with 403 (http). Zero:
	// any certificate from the internal CA.
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
	// ClientIdentity is the SPIFFE ID whose certificate drawbridge presents
	// to this upstream's targets, e.g. the database user PostgreSQL's
	// certificate authentication maps the certificate to (its CN is the
	// SPIFFE ID; a pg_ident.conf regex maps spiffe://td/app to user app).
	// Zero: the gateway's own identity.
	ClientIdentity string `yaml:"client_identity"`
}

// Sources of a listener's server certificate (ListenerTLS.Certificate).
const (
	CertificateInternal = "internal" // issued and renewed by drawbridge's CA
	CertificateACME     = "acme"     // public names through certmagic
	CertificateFiles    = "files"    // CertFile and KeyFile, reloaded when they change
)

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
	// server or mutual (listener.TLS). For a tcp or postgres listener it
	// should refuse clients outside listener.TLS.Allow at the handshake;
	// for an http listener it must not: the proxy answers them 403. The
	// proxy checks the allow lists after the handshake in either case.
	ServerTLS(listener ListenerConfig) (*tls.Config, error)
	// ClientTLS returns the configuration drawbridge uses toward an
	// upstream's targets (our certificate, their verification).
	ClientTLS(upstream string, cfg UpstreamTLS) (*tls.Config, error)
}

// HandshakeObserver is implemented by a TLSProvider that counts and logs
// refused handshakes itself (cmd's adapter over pki.Manager). Without it,
// an http listener handshakes through crypto/tls's own listener and a
// failed handshake of a tcp or postgres listener shows in its access log
// line only.
type HandshakeObserver interface {
	// TLSListener wraps the socket of an http listener with TLS: Accept
	// returns *tls.Conn whose handshake with cfg has finished, each
	// bounded by timeout; failures are counted and logged.
	TLSListener(listener string, inner net.Listener, cfg *tls.Config, timeout time.Duration) net.Listener
	// HandshakeFailed records a failed server handshake of a tcp or
	// postgres listener.
	HandshakeFailed(listener string, remote net.Addr, err error)
}

func (t *ListenerTLS) defaults(listener string) {
	t.Mode = cmp.Or(t.Mode, TLSNone)
	if t.Mode == TLSNone || t.Mode == TLSPassthrough {
		return
	}
	t.Certificate = cmp.Or(t.Certificate, CertificateInternal)
	if len(t.Names) == 0 {
		t.Names = []string{listener}
	}
	if t.Mode == TLSMutual {
		t.Profile = cmp.Or(t.Profile, ProfileInternal)
	} else {
		t.Profile = cmp.Or(t.Profile, ProfileEdge)
	}
}

func (t *ListenerTLS) validate(path, protocol string, p *configerr.List) {
	switch t.Mode {
	case TLSNone, TLSServer, TLSMutual:
	case TLSPassthrough:
		if protocol != ProtocolTCP {
			p.Add(path+".mode", "passthrough needs a tcp listener (an http or postgres listener must see inside TLS)")
		}
	default:
		p.Add(path+".mode", "unknown mode %q (want none, server, mutual or passthrough)", t.Mode)
	}
	if t.Mode == TLSNone || t.Mode == TLSPassthrough {
		if len(t.Allow) > 0 {
			p.Add(path+".allow", "identities can only be checked with mode: mutual")
		}
		return
	}
	switch t.Certificate {
	case CertificateInternal, CertificateACME:
	case CertificateFiles:
		if t.CertFile == "" || t.KeyFile == "" {
			p.Add(path, "certificate: files needs cert_file and key_file")
		}
	default:
		p.Add(path+".certificate", "unknown source %q (want internal, acme or files)", t.Certificate)
	}
	if t.ClientCAFile != "" && t.Mode != TLSMutual {
		p.Add(path+".client_ca_file", "only for mode: mutual (it verifies client certificates)")
	}
	if t.Certificate == CertificateACME && t.Mode == TLSMutual {
		p.Add(path+".certificate", "acme is for public edge names; a mutual listener uses the internal CA")
	}
	if t.Profile != ProfileInternal && t.Profile != ProfileEdge {
		p.Add(path+".profile", "unknown profile %q (want internal or edge)", t.Profile)
	}
	if len(t.Allow) > 0 && t.Mode != TLSMutual {
		p.Add(path+".allow", "identities can only be checked with mode: mutual")
	}
	checkAllow(path+".allow", t.Allow, p)
	if t.HSTSMaxAge < 0 {
		p.Add(path+".hsts_max_age", "must be >= 0")
	}
}

func (t *UpstreamTLS) validate(path string, p *configerr.List) {
	for _, kv := range [][2]string{{"identity", t.Identity}, {"client_identity", t.ClientIdentity}} {
		key, v := kv[0], kv[1]
		if v == "" {
			continue
		}
		if id, err := identity.Parse(v); err != nil {
			p.Add(path+"."+key, "%q is not a SPIFFE ID (spiffe://trust-domain/path): %v", v, err)
		} else if id.Path() == "" {
			p.Add(path+"."+key, "%q names no service (spiffe://trust-domain/service)", v)
		}
	}
}

// checkAllow validates allow-list patterns.
func checkAllow(path string, patterns []string, p *configerr.List) {
	for i, pat := range patterns {
		if err := identity.CheckPattern(pat); err != nil {
			p.Add(fmt.Sprintf("%s[%d]", path, i), "%v", err)
		}
	}
}

// newAllowList compiles validated patterns; nil for none.
func newAllowList(patterns []string) *identity.AllowList {
	if len(patterns) == 0 {
		return nil
	}
	al, err := identity.NewAllowList(patterns)
	if err != nil {
		// Validate refused bad patterns; fail closed anyway.
		al, _ = identity.NewAllowList(nil)
	}
	return al
}

// usesTLS reports whether an upstream protocol is encrypted by drawbridge.
func usesTLS(protocol string) bool {
	return protocol == ProtocolHTTPS || protocol == ProtocolTLS || protocol == ProtocolPostgres
}
