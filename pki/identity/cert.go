package identity

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
)

// ErrNoIdentity is wrapped when a certificate or connection carries no usable
// SPIFFE identity.
var ErrNoIdentity = errors.New("no SPIFFE identity")

// FromCertificate returns the SPIFFE ID of cert. The certificate must hold
// exactly one URI SAN and it must be a valid SPIFFE ID (X.509-SVID, section
// 2); anything else is refused. It does not verify the certificate: use it
// only on a certificate whose chain was verified, or use FromConnectionState.
func FromCertificate(cert *x509.Certificate) (ID, error) {
	if cert == nil {
		return ID{}, fmt.Errorf("%w: no certificate", ErrNoIdentity)
	}
	switch n := len(cert.URIs); n {
	case 0:
		return ID{}, fmt.Errorf("%w: certificate %q has no URI SAN", ErrNoIdentity, cert.Subject.CommonName)
	case 1:
	default:
		return ID{}, fmt.Errorf("%w: certificate %q has %d URI SANs, want exactly one", ErrNoIdentity, cert.Subject.CommonName, n)
	}
	id, err := Parse(cert.URIs[0].String())
	if err != nil {
		return ID{}, fmt.Errorf("%w: certificate %q: %w", ErrNoIdentity, cert.Subject.CommonName, err)
	}
	return id, nil
}

// FromConnectionState returns the SPIFFE ID of the peer of a finished TLS
// handshake. It refuses a connection whose peer chain was not verified by
// crypto/tls (VerifiedChains empty), so a listener misconfigured to accept
// any client certificate cannot yield an identity.
func FromConnectionState(cs tls.ConnectionState) (ID, error) {
	if !cs.HandshakeComplete {
		return ID{}, fmt.Errorf("%w: handshake not complete", ErrNoIdentity)
	}
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return ID{}, fmt.Errorf("%w: peer certificate was not verified", ErrNoIdentity)
	}
	return FromCertificate(cs.VerifiedChains[0][0])
}
