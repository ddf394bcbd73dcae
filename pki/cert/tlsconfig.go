package cert

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/drawbridge-proxy/drawbridge/pki/identity"
	"github.com/drawbridge-proxy/drawbridge/pki/trust"
)

// Profile is a TLS policy.
type Profile int

const (
	// Internal is for hops between drawbridge and services: TLS 1.3 only.
	Internal Profile = iota
	// Edge is Mozilla's "intermediate" profile (Server Side TLS 5.7):
	// TLS 1.2 and 1.3, ECDHE with AES-GCM or ChaCha20-Poly1305 only, curves
	// X25519, P-256, P-384. Go's defaults would also offer CBC-SHA1 suites.
	Edge
)

// mozillaIntermediateSuites are the TLS 1.2 suites of Mozilla's
// intermediate profile that Go implements (it has no DHE), in Mozilla's
// order. TLS 1.3 suites are not configurable in Go; all three are in the
// profile.
var mozillaIntermediateSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

func applyProfile(c *tls.Config, p Profile) {
	switch p {
	case Edge:
		c.MinVersion = tls.VersionTLS12
		c.MaxVersion = tls.VersionTLS13
		c.CipherSuites = mozillaIntermediateSuites
		c.CurvePreferences = []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384}
	default:
		c.MinVersion = tls.VersionTLS13
		c.MaxVersion = tls.VersionTLS13
	}
}

// CertSource supplies a server certificate per handshake: FileSource,
// ACME, or the Manager itself for an internal identity.
type CertSource interface {
	GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error)
}

// ServerOptions describe a listener's TLS.
type ServerOptions struct {
	// Identity is the internal identity whose certificate the server
	// presents. Zero: Certificates must be set.
	Identity identity.ID
	// Certificates supplies the certificate instead (files or ACME for a
	// public edge). Zero: the Manager's certificate for Identity.
	Certificates CertSource
	// Mutual requires a client certificate that chains to the trust bundle
	// (mode "mutual"). Zero: no client certificate is asked (mode "server").
	Mutual bool
	// ClientCertOptional asks for a client certificate and verifies it
	// against the trust bundle when one is sent, but admits clients
	// without one (the enrollment endpoint). Zero: see Mutual.
	ClientCertOptional bool
	// Allow, with Mutual, refuses at the handshake every client whose
	// identity it does not allow. Zero: any identity of the trust domain
	// completes the handshake (route-level checks are the proxy's).
	Allow *identity.AllowList
	// Profile is the TLS policy. Zero: Internal (TLS 1.3 only).
	Profile Profile
	// NextProtos is the ALPN list, e.g. h2, http/1.1. Zero: none.
	NextProtos []string
	// ClientCAs, with Mutual, verifies client chains against these roots
	// (a CA the operator brings, tls.client_ca_file) instead of the trust
	// bundle; client identities need not be in the trust domain. Zero: the
	// trust bundle.
	ClientCAs *x509.CertPool
}

// StaticServerConfig is a server *tls.Config that needs no CA of ours: the
// certificate comes from opts.Certificates (files) and, with Mutual,
// client chains are verified against opts.ClientCAs. Both are required.
func StaticServerConfig(opts ServerOptions) (*tls.Config, error) {
	if opts.Certificates == nil {
		return nil, errors.New("server config: without a CA, set Certificates")
	}
	if opts.Mutual && opts.ClientCAs == nil {
		return nil, errors.New("server config: mutual TLS without a CA needs ClientCAs")
	}
	return staticServerConfig(opts.Certificates.GetCertificate, opts, time.Now)
}

// staticServerConfig builds a config whose client roots are fixed
// (opts.ClientCAs), so crypto/tls verifies chains itself; VerifyConnection
// adds the leaf and allow-list checks.
func staticServerConfig(getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error), opts ServerOptions, now func() time.Time) (*tls.Config, error) {
	c := &tls.Config{GetCertificate: getCert, NextProtos: opts.NextProtos, Time: now}
	if np, ok := opts.Certificates.(interface{ NextProtos() []string }); ok {
		c.NextProtos = append(slices.Clone(opts.NextProtos), np.NextProtos()...)
	}
	applyProfile(c, opts.Profile)
	if !opts.Mutual {
		if opts.Allow != nil {
			return nil, errors.New("server config: Allow needs Mutual")
		}
		return c, nil
	}
	c.ClientAuth, c.ClientCAs = tls.RequireAndVerifyClientCert, opts.ClientCAs
	allow := opts.Allow
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if err := checkBroughtPeer(cs.PeerCertificates, allow); err != nil {
			return err
		}
		return nil
	}
	return c, nil
}

// checkBroughtPeer checks a client chain that crypto/tls verified against
// an operator's CA: a leaf, and an allowed identity when there is a list.
func checkBroughtPeer(chain []*x509.Certificate, allow *identity.AllowList) *RefusalError {
	if len(chain) == 0 {
		return &RefusalError{Reason: ReasonNoCertificate, Detail: "no certificate"}
	}
	if chain[0].IsCA {
		return &RefusalError{Reason: ReasonCAAsLeaf, Detail: fmt.Sprintf("certificate %q is a CA certificate", chain[0].Subject.CommonName)}
	}
	if allow == nil {
		return nil
	}
	id, err := identity.FromCertificate(chain[0])
	if err != nil {
		return &RefusalError{Reason: ReasonNoIdentity, Detail: err.Error()}
	}
	if !allow.Allows(id) {
		return &RefusalError{Reason: ReasonIdentityNotAllowed, Detail: id.String()}
	}
	return nil
}

// ServerConfig returns a server *tls.Config. The certificate is looked up
// on every handshake, and so is the trust bundle in mutual mode, so
// renewals and rotations apply to new handshakes while open connections
// stay. Verified client chains are in ConnectionState.VerifiedChains, as
// identity.FromConnectionState requires.
func (m *Manager) ServerConfig(opts ServerOptions) (*tls.Config, error) {
	getCert, err := m.certGetter(opts)
	if err != nil {
		return nil, err
	}
	if opts.Mutual && opts.ClientCAs != nil {
		return staticServerConfig(getCert, opts, m.now)
	}
	base := &tls.Config{GetCertificate: getCert, NextProtos: opts.NextProtos, Time: m.now}
	if np, ok := opts.Certificates.(interface{ NextProtos() []string }); ok {
		base.NextProtos = append(slices.Clone(opts.NextProtos), np.NextProtos()...)
	}
	applyProfile(base, opts.Profile)
	if !opts.Mutual && !opts.ClientCertOptional {
		if opts.Allow != nil {
			return nil, errors.New("server config: Allow needs Mutual")
		}
		return base, nil
	}
	// crypto/tls verifies client chains against ClientCAs, which is fixed
	// per Config: derive a Config per trust bundle, rebuilt only when the
	// bundle changes, and hand it out per handshake.
	type perBundle struct {
		bundle *trust.Bundle
		cfg    *tls.Config
	}
	var cur atomic.Pointer[perBundle]
	verify := m.verifyClient(opts.Allow, !opts.Mutual)
	auth := tls.RequireAndVerifyClientCert
	if !opts.Mutual {
		auth = tls.VerifyClientCertIfGiven
	}
	out := base.Clone()
	out.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		b := m.auth.TrustBundle()
		if p := cur.Load(); p != nil && p.bundle == b {
			return p.cfg, nil
		}
		c := base.Clone()
		c.ClientAuth = auth
		c.ClientCAs = b.Pool()
		c.VerifyConnection = verify
		cur.Store(&perBundle{bundle: b, cfg: c})
		return c, nil
	}
	// Without GetConfigForClient (never, but fail closed) the base asks for
	// and verifies a client certificate against no roots.
	out.ClientAuth = auth
	out.ClientCAs = x509.NewCertPool()
	return out, nil
}

func (m *Manager) certGetter(opts ServerOptions) (func(*tls.ClientHelloInfo) (*tls.Certificate, error), error) {
	if opts.Certificates != nil {
		return opts.Certificates.GetCertificate, nil
	}
	if opts.Identity.IsZero() {
		return nil, errors.New("server config: set Identity or Certificates")
	}
	id := opts.Identity
	return func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return m.Certificate(id) }, nil
}

// verifyClient runs after crypto/tls has verified the chain: it refuses a
// CA certificate used as a leaf (Go accepts one), a peer without a SPIFFE
// ID of our trust domain, and identities allow does not allow.
func (m *Manager) verifyClient(allow *identity.AllowList, optional bool) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if optional && len(cs.PeerCertificates) == 0 {
			return nil
		}
		if err := m.checkPeer(cs.PeerCertificates, allow, identity.ID{}); err != nil {
			m.metrics.HandshakeFailed(err.Reason)
			if ok, suppressed := m.refusals.Allow("client:" + err.Reason); ok {
				m.log.Warn("TLS client refused", "reason", err.Reason, "detail", err.Detail, suppressed)
			}
			return err
		}
		return nil
	}
}

// RefusalError is a handshake refused by drawbridge's own checks, with a
// bounded reason (the metric label).
type RefusalError struct {
	Reason string
	Detail string
}

func (e *RefusalError) Error() string {
	return "drawbridge refused the peer: " + e.Reason + ": " + e.Detail
}

func (m *Manager) checkPeer(chain []*x509.Certificate, allow *identity.AllowList, want identity.ID) *RefusalError {
	if len(chain) == 0 {
		return &RefusalError{Reason: ReasonNoCertificate, Detail: "no certificate"}
	}
	leaf := chain[0]
	if leaf.IsCA {
		return &RefusalError{Reason: ReasonCAAsLeaf, Detail: fmt.Sprintf("certificate %q is a CA certificate", leaf.Subject.CommonName)}
	}
	id, err := identity.FromCertificate(leaf)
	if err != nil {
		if want.IsZero() && allow == nil {
			return nil // server name verified instead (client side), or mutual with any identity
		}
		return &RefusalError{Reason: ReasonNoIdentity, Detail: err.Error()}
	}
	if id.TrustDomain() != m.auth.TrustDomain() {
		return &RefusalError{Reason: ReasonForeignTrustDomain, Detail: id.String()}
	}
	if !want.IsZero() && id != want {
		return &RefusalError{Reason: ReasonIdentityMismatch, Detail: fmt.Sprintf("peer is %s, want %s", id, want)}
	}
	if allow != nil && !allow.Allows(id) {
		return &RefusalError{Reason: ReasonIdentityNotAllowed, Detail: id.String()}
	}
	return nil
}

// ClientOptions describe an upstream hop's TLS.
type ClientOptions struct {
	// Identity is the certificate drawbridge presents. Zero: none (the
	// upstream then cannot require one).
	Identity identity.ID
	// ServerID is the SPIFFE ID the upstream must present. Zero: the
	// upstream's DNS name (ServerName) is verified instead.
	ServerID identity.ID
	// ServerName is sent as SNI and, without ServerID, verified against the
	// certificate's DNS names. Zero with ServerID: no SNI.
	ServerName string
	// Roots verifies the upstream against these roots instead of the trust
	// bundle (an upstream outside the trust domain, e.g. a CA file). Zero:
	// the trust bundle current at each handshake.
	Roots *x509.CertPool
	// Profile: zero is Internal (TLS 1.3 only).
	Profile Profile
	// NextProtos is the ALPN list. Zero: none.
	NextProtos []string
}

// ClientConfig returns a client *tls.Config for an upstream hop. It verifies
// the upstream's chain against the trust bundle current at each handshake,
// then its SPIFFE ID or DNS name; there is no fallback to plain text or to
// skipping checks.
func (m *Manager) ClientConfig(opts ClientOptions) (*tls.Config, error) {
	if opts.ServerID.IsZero() && opts.ServerName == "" {
		return nil, errors.New("client config: set ServerID or ServerName, so the upstream's identity is checked")
	}
	c := &tls.Config{
		ServerName: opts.ServerName,
		NextProtos: opts.NextProtos,
		Time:       m.now,
		// crypto/tls would verify against a fixed RootCAs; VerifyConnection
		// below does the whole verification against the current bundle
		// instead, on full handshakes and resumptions alike.
		InsecureSkipVerify: true, //nolint:gosec // verification is in VerifyConnection
		VerifyConnection:   m.verifyServer(opts),
	}
	applyProfile(c, opts.Profile)
	if !opts.Identity.IsZero() {
		id := opts.Identity
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return m.Certificate(id)
		}
	}
	return c, nil
}

func (m *Manager) verifyServer(opts ClientOptions) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		err := m.verifyServerChain(cs, opts)
		if err != nil {
			m.metrics.HandshakeFailed(err.Reason)
			if ok, suppressed := m.refusals.Allow("upstream:" + err.Reason); ok {
				m.log.Warn("TLS upstream refused", "reason", err.Reason, "server_name", opts.ServerName, "detail", err.Detail, suppressed)
			}
			return err
		}
		return nil
	}
}

func (m *Manager) verifyServerChain(cs tls.ConnectionState, opts ClientOptions) *RefusalError {
	if len(cs.PeerCertificates) == 0 {
		return &RefusalError{Reason: ReasonNoCertificate, Detail: "upstream sent no certificate"}
	}
	roots := opts.Roots
	if roots == nil {
		roots = m.auth.TrustBundle().Pool()
	}
	vo := x509.VerifyOptions{
		Roots:         roots,
		Intermediates: x509.NewCertPool(),
		CurrentTime:   m.now(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, c := range cs.PeerCertificates[1:] {
		vo.Intermediates.AddCert(c)
	}
	if opts.ServerID.IsZero() {
		vo.DNSName = opts.ServerName
	}
	if _, err := cs.PeerCertificates[0].Verify(vo); err != nil {
		return &RefusalError{Reason: classify(err, m.now()), Detail: err.Error()}
	}
	if opts.Roots != nil && opts.ServerID.IsZero() {
		// Outside the trust domain: the DNS name, verified above, is the identity.
		return nil
	}
	return m.checkPeer(cs.PeerCertificates, nil, opts.ServerID)
}
