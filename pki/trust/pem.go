package trust

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
)

// PEMCert encodes c as one PEM CERTIFICATE block.
func PEMCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// ParseCertPEM decodes the first PEM block of b, which must be a
// CERTIFICATE.
func ParseCertPEM(b []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(blk.Bytes)
}

// ParseCertsPEM decodes every CERTIFICATE block of b, skipping other
// blocks; it fails when there is none.
func ParseCertsPEM(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate")
	}
	return out, nil
}

// CertSHA256 is a certificate's fingerprint: the hex SHA-256 of its DER,
// as `openssl x509 -fingerprint -sha256` prints it (without colons, lower
// case). It is not keyed; the audit log's keyed digests of secrets are
// another thing.
func CertSHA256(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// ChainPEM encodes a chain, leaf first, as consecutive PEM blocks.
func ChainPEM(chain []*x509.Certificate) []byte {
	var buf bytes.Buffer
	for _, c := range chain {
		buf.Write(PEMCert(c))
	}
	return buf.Bytes()
}
