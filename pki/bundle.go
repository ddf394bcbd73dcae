package pki

import (
	"bytes"
	"crypto/x509"
)

// TrustBundle is an immutable set of trusted roots. A new bundle replaces
// the old one on rotation; verifiers read the current one on every
// handshake.
type TrustBundle struct {
	roots []*x509.Certificate
	pool  *x509.CertPool
	pem   []byte
}

func newTrustBundle(roots []*x509.Certificate) *TrustBundle {
	b := &TrustBundle{roots: roots, pool: x509.NewCertPool()}
	var buf bytes.Buffer
	for _, r := range roots {
		b.pool.AddCert(r)
		buf.Write(pemCert(r))
	}
	b.pem = buf.Bytes()
	return b
}

// Roots returns the trusted roots, the active one first.
func (b *TrustBundle) Roots() []*x509.Certificate {
	return append([]*x509.Certificate(nil), b.roots...)
}

// Pool returns the roots as a pool. It is shared: do not add to it.
func (b *TrustBundle) Pool() *x509.CertPool { return b.pool }

// PEM returns the roots in PEM, the active one first: the file for
// `curl --cacert` or a service's CA file.
func (b *TrustBundle) PEM() []byte { return bytes.Clone(b.pem) }

// Contains reports whether c is one of the roots.
func (b *TrustBundle) Contains(c *x509.Certificate) bool {
	for _, r := range b.roots {
		if r.Equal(c) {
			return true
		}
	}
	return false
}

// NewTrustBundle returns a bundle of roots, the active one first, for an
// Authority implemented outside this package (tests, an external CA).
func NewTrustBundle(roots []*x509.Certificate) *TrustBundle { return newTrustBundle(roots) }
