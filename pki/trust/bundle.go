package trust

import (
	"bytes"
	"crypto/x509"
)

// Bundle is an immutable set of trusted roots. A new bundle replaces
// the old one on rotation; verifiers read the current one on every
// handshake.
type Bundle struct {
	roots []*x509.Certificate
	pool  *x509.CertPool
	pem   []byte
}

// NewBundle returns a bundle of roots, the active one first.
func NewBundle(roots []*x509.Certificate) *Bundle {
	b := &Bundle{roots: roots, pool: x509.NewCertPool()}
	var buf bytes.Buffer
	for _, r := range roots {
		b.pool.AddCert(r)
		buf.Write(PEMCert(r))
	}
	b.pem = buf.Bytes()
	return b
}

// Roots returns the trusted roots, the active one first.
func (b *Bundle) Roots() []*x509.Certificate {
	return append([]*x509.Certificate(nil), b.roots...)
}

// Pool returns the roots as a pool. It is shared: do not add to it.
func (b *Bundle) Pool() *x509.CertPool { return b.pool }

// PEM returns the roots in PEM, the active one first: the file for
// `curl --cacert` or a service's CA file.
func (b *Bundle) PEM() []byte { return bytes.Clone(b.pem) }

// Contains reports whether c is one of the roots.
func (b *Bundle) Contains(c *x509.Certificate) bool {
	for _, r := range b.roots {
		if r.Equal(c) {
			return true
		}
	}
	return false
}

// Equal reports whether b and o hold the same roots in the same order.
func (b *Bundle) Equal(o *Bundle) bool { return bytes.Equal(b.pem, o.pem) }
