package pkitest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/url"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/pki/identity"
)

// CA signs test certificates. Build one with NewCA, or wrap any CA
// certificate and key (for example the intermediate of a real drawbridge CA
// in an internal test) with Wrap.
type CA struct {
	Cert        *x509.Certificate
	Key         crypto.Signer
	TrustDomain string
	// Chain is sent after each leaf: the signer itself when it is an
	// intermediate, then any CA above it, never the root. Empty for a root.
	Chain []*x509.Certificate
}

// NewCA returns a self-signed root CA for trustDomain, valid from an hour
// ago for a day.
func NewCA(tb testing.TB, trustDomain string) *CA {
	tb.Helper()
	key := newKey(tb)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(tb),
		Subject:               pkix.Name{CommonName: "pkitest root " + trustDomain},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	cert := create(tb, tmpl, tmpl, key.Public(), key)
	return &CA{Cert: cert, Key: key, TrustDomain: trustDomain}
}

// Wrap returns a CA that signs with cert and key; chain is sent after each
// leaf (cert itself first when it is an intermediate, never the root).
func Wrap(cert *x509.Certificate, key crypto.Signer, trustDomain string, chain ...*x509.Certificate) *CA {
	return &CA{Cert: cert, Key: key, TrustDomain: trustDomain, Chain: chain}
}

// Pool returns a pool holding only this CA's certificate.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// PEM returns the CA certificate in PEM.
func (ca *CA) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
}

// LeafOptions describes a leaf. The zero value of each field is noted.
type LeafOptions struct {
	// Service is the SPIFFE path; zero: no URI SAN.
	Service string
	// DNSNames are the DNS SANs; zero: none.
	DNSNames []string
	// NotBefore and NotAfter bound validity; zero: from a minute ago for an hour.
	NotBefore, NotAfter time.Time
	// ExtKeyUsage; zero: server and client authentication.
	ExtKeyUsage []x509.ExtKeyUsage
	// IsCA makes the leaf a CA certificate (a flaw to test); zero: not a CA.
	IsCA bool
}

// Issue signs a leaf as described by opts and returns it with its key and
// chain, ready for tls.Config.Certificates.
func (ca *CA) Issue(tb testing.TB, opts LeafOptions) tls.Certificate {
	tb.Helper()
	key := newKey(tb)
	now := time.Now()
	if opts.NotBefore.IsZero() {
		opts.NotBefore = now.Add(-time.Minute)
	}
	if opts.NotAfter.IsZero() {
		opts.NotAfter = now.Add(time.Hour)
	}
	if opts.ExtKeyUsage == nil {
		opts.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(tb),
		Subject:               pkix.Name{CommonName: opts.Service},
		DNSNames:              opts.DNSNames,
		NotBefore:             opts.NotBefore,
		NotAfter:              opts.NotAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           opts.ExtKeyUsage,
		BasicConstraintsValid: true,
		IsCA:                  opts.IsCA,
	}
	if opts.IsCA {
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	}
	if opts.Service != "" {
		id, err := identity.New(ca.TrustDomain, opts.Service)
		if err != nil {
			tb.Fatalf("pkitest: %v", err)
		}
		u, err := url.Parse(id.String())
		if err != nil {
			tb.Fatalf("pkitest: %v", err)
		}
		tmpl.URIs = []*url.URL{u}
	}
	leaf := create(tb, tmpl, ca.Cert, key.Public(), ca.Key)
	tc := tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}
	for _, c := range ca.Chain {
		tc.Certificate = append(tc.Certificate, c.Raw)
	}
	return tc
}

// Leaf is a valid client and server certificate for service.
func (ca *CA) Leaf(tb testing.TB, service string, dnsNames ...string) tls.Certificate {
	tb.Helper()
	return ca.Issue(tb, LeafOptions{Service: service, DNSNames: dnsNames})
}

// Expired is a certificate for service that expired a minute ago.
func (ca *CA) Expired(tb testing.TB, service string) tls.Certificate {
	tb.Helper()
	now := time.Now()
	return ca.Issue(tb, LeafOptions{Service: service, NotBefore: now.Add(-2 * time.Hour), NotAfter: now.Add(-time.Minute)})
}

// NotYetValid is a certificate for service valid from an hour from now.
func (ca *CA) NotYetValid(tb testing.TB, service string) tls.Certificate {
	tb.Helper()
	now := time.Now()
	return ca.Issue(tb, LeafOptions{Service: service, NotBefore: now.Add(time.Hour), NotAfter: now.Add(2 * time.Hour)})
}

// WrongEKU is a certificate for service usable only for code signing.
func (ca *CA) WrongEKU(tb testing.TB, service string) tls.Certificate {
	tb.Helper()
	return ca.Issue(tb, LeafOptions{Service: service, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}})
}

// CAAsLeaf is a CA certificate for service presented as a leaf.
func (ca *CA) CAAsLeaf(tb testing.TB, service string) tls.Certificate {
	tb.Helper()
	return ca.Issue(tb, LeafOptions{Service: service, IsCA: true})
}

// Intermediate returns a CA signed by this one (valid as long as it), whose
// leaves carry the intermediate in their chain.
func (ca *CA) Intermediate(tb testing.TB) *CA {
	tb.Helper()
	key := newKey(tb)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(tb),
		Subject:               pkix.Name{CommonName: "pkitest intermediate " + ca.TrustDomain},
		NotBefore:             ca.Cert.NotBefore,
		NotAfter:              ca.Cert.NotAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	cert := create(tb, tmpl, ca.Cert, key.Public(), ca.Key)
	return &CA{Cert: cert, Key: key, TrustDomain: ca.TrustDomain, Chain: append([]*x509.Certificate{cert}, ca.Chain...)}
}

func newKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatalf("pkitest: generating key: %v", err)
	}
	return key
}

func serial(tb testing.TB) *big.Int {
	tb.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		tb.Fatalf("pkitest: serial: %v", err)
	}
	return n
}

func create(tb testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
	tb.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		tb.Fatalf("pkitest: creating certificate %q: %v", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatalf("pkitest: parsing certificate: %v", err)
	}
	return cert
}
