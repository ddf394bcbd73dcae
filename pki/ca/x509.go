package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"time"

	"github.com/caddyserver/certmagic"
)

// caBackdate is how far before "now" a CA certificate starts, so a peer
// whose clock is a little behind still accepts it.
const caBackdate = time.Hour

func newKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

// newSerial returns a serial with 128 random bits (CA/B Forum BR 7.1 asks
// for at least 64). Bit 128 is set so every serial is positive and 17
// bytes long, within RFC 5280's 20-octet limit.
func newSerial() (*big.Int, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("generating serial: %w", err)
	}
	n := new(big.Int).SetBytes(b)
	return n.SetBit(n, 128, 1), nil
}

func sign(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// newRoot makes a self-signed root valid for lifetime.
func newRoot(trustDomain string, generation int, now time.Time, lifetime time.Duration) (*x509.Certificate, crypto.Signer, error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	sn, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject: pkix.Name{
			Organization: []string{"drawbridge"},
			CommonName:   fmt.Sprintf("%s Root CA G%d", trustDomain, generation),
		},
		NotBefore:             now.Add(-caBackdate),
		NotAfter:              now.Add(lifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		// Two: the intermediate, and the cross certificate a rotation
		// puts between it and the previous root.
		MaxPathLen: 2,
	}
	cert, err := sign(tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("creating root: %w", err)
	}
	return cert, key, nil
}

// newIntermediate makes an intermediate under root, name-constrained to the
// trust domain (URI SANs) and permittedDNS (DNS SANs), with no IP SANs at
// all (RFC 5280, 4.2.1.10). It never outlives the root.
func newIntermediate(root *x509.Certificate, rootKey crypto.Signer, trustDomain string, permittedDNS []string, generation int, now time.Time, lifetime time.Duration) (*x509.Certificate, crypto.Signer, error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	sn, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	_, all4, _ := net.ParseCIDR("0.0.0.0/0")
	_, all6, _ := net.ParseCIDR("::/0")
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject: pkix.Name{
			Organization: []string{"drawbridge"},
			CommonName:   fmt.Sprintf("%s Intermediate CA G%d %s", trustDomain, generation, now.UTC().Format("20060102T150405")),
		},
		NotBefore:                   now.Add(-caBackdate),
		NotAfter:                    minTime(now.Add(lifetime), root.NotAfter),
		KeyUsage:                    x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid:       true,
		IsCA:                        true,
		MaxPathLenZero:              true,
		PermittedDNSDomainsCritical: true,
		PermittedDNSDomains:         permittedDNS,
		PermittedURIDomains:         []string{trustDomain},
		ExcludedIPRanges:            []*net.IPNet{all4, all6},
	}
	cert, err := sign(tmpl, root, key.Public(), rootKey)
	if err != nil {
		return nil, nil, fmt.Errorf("creating intermediate: %w", err)
	}
	return cert, key, nil
}

// crossSign issues newRoot's subject and key under oldRoot, so a peer that
// trusts only oldRoot can verify chains ending in newRoot.
func crossSign(newRoot, oldRoot *x509.Certificate, oldKey crypto.Signer) (*x509.Certificate, error) {
	sn, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               newRoot.Subject,
		SubjectKeyId:          newRoot.SubjectKeyId,
		NotBefore:             newRoot.NotBefore,
		NotAfter:              minTime(newRoot.NotAfter, oldRoot.NotAfter),
		KeyUsage:              newRoot.KeyUsage,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            1,
	}
	cert, err := sign(tmpl, oldRoot, newRoot.PublicKey, oldKey)
	if err != nil {
		return nil, fmt.Errorf("cross-signing the new root: %w", err)
	}
	return cert, nil
}

// leafRequest is what goes into a leaf besides the CSR's public key.
type leafRequest struct {
	ID       *url.URL
	DNSNames []string
	Lifetime time.Duration
}

// newLeaf signs a short-lived leaf for the CSR's key. It never outlives the
// intermediate.
func newLeaf(csr *x509.CertificateRequest, req leafRequest, inter *x509.Certificate, interKey crypto.Signer, now time.Time) (*x509.Certificate, error) {
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("checking CSR signature: %w", err)
	}
	sn, err := newSerial()
	if err != nil {
		return nil, err
	}
	// Backdate a little for clock skew, but by at most a tenth of the
	// lifetime so certmagic's renewal window (a share of the lifetime)
	// stays meaningful for very short leaves.
	backdate := min(time.Minute, req.Lifetime/10)
	notAfter := minTime(now.Add(req.Lifetime), inter.NotAfter)
	if !notAfter.After(now) {
		return nil, errors.New("the intermediate has expired: the CA must renew it before issuing")
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		DNSNames:              req.DNSNames,
	}
	if req.ID != nil {
		tmpl.URIs = []*url.URL{req.ID}
		// The CN is the whole SPIFFE ID, not a shorter name: certmagic
		// files a certificate under its CN (its first name) and renews it
		// by that name, which must be the managed subject. Services that
		// match the CN (PostgreSQL's cert authentication) map it with a
		// regular expression (see the README).
		if s := req.ID.String(); len(s) <= 64 {
			tmpl.Subject.CommonName = s
		}
	} else if len(req.DNSNames) > 0 {
		tmpl.Subject.CommonName = req.DNSNames[0]
	}
	cert, err := sign(tmpl, inter, csr.PublicKey, interKey)
	if err != nil {
		return nil, fmt.Errorf("signing leaf: %w", err)
	}
	return cert, nil
}

func pemKey(k crypto.Signer) ([]byte, error) { return certmagic.PEMEncodePrivateKey(k) }

func parseKeyPEM(b []byte) (crypto.Signer, error) { return certmagic.PEMDecodePrivateKey(b) }
