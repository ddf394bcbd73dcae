package ca

import (
	"context"
	"crypto/x509"
	"fmt"
	"slices"
	"sync"

	"github.com/caddyserver/certmagic"

	"github.com/drawbridge-proxy/drawbridge/pki/identity"
	"github.com/drawbridge-proxy/drawbridge/pki/trust"
)

// IssuerKey is the certmagic issuer key of drawbridge's internal CA: the
// storage folder of the leaves it issues. It stays the same across root
// rotations so renewals find the previous certificate.
const IssuerKey = "drawbridge-internal"

// Issuer is a certmagic.Issuer backed by the local CA. certmagic asks it
// for a certificate whose subject is a SPIFFE ID; the Issuer adds the DNS
// names registered for that ID. Lifetimes are the CA's leaf lifetime,
// capped at the intermediate's expiry. It holds no OCSP responder, so
// certmagic must have stapling off (the Manager does this).
type Issuer struct {
	ca *CA

	mu    sync.RWMutex        // guards names
	names map[string][]string // SPIFFE ID -> DNS names
}

var _ certmagic.Issuer = (*Issuer)(nil)

// NewIssuer returns an Issuer backed by ca.
func NewIssuer(ca *CA) *Issuer {
	return &Issuer{ca: ca, names: map[string][]string{}}
}

// IssuerKey implements certmagic.Issuer.
func (iss *Issuer) IssuerKey() string { return IssuerKey }

// TrustBundle returns the CA's current trust bundle.
func (iss *Issuer) TrustBundle() *trust.Bundle { return iss.ca.TrustBundle() }

// TrustDomain returns the CA's trust domain.
func (iss *Issuer) TrustDomain() string { return iss.ca.TrustDomain() }

// Register records the DNS names to put in id's certificates.
func (iss *Issuer) Register(id identity.ID, dnsNames []string) {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	iss.names[id.String()] = slices.Clone(dnsNames)
}

// Issue implements certmagic.Issuer: it signs csr with the CA.
func (iss *Issuer) Issue(ctx context.Context, csr *x509.CertificateRequest) (*certmagic.IssuedCertificate, error) {
	id, dns, err := iss.requestFor(csr)
	if err != nil {
		return nil, err
	}
	chain, err := iss.ca.Sign(ctx, csr, LeafRequest{ID: id, DNSNames: dns, Via: "local"})
	if err != nil {
		return nil, err
	}
	return &certmagic.IssuedCertificate{Certificate: trust.ChainPEM(chain)}, nil
}

// requestFor reads the SPIFFE ID certmagic put in the CSR (the managed
// subject) and looks up its DNS names.
func (iss *Issuer) requestFor(csr *x509.CertificateRequest) (identity.ID, []string, error) {
	if len(csr.URIs) != 1 {
		return identity.ID{}, nil, fmt.Errorf("internal issuer: CSR must name exactly one SPIFFE ID, got %d URIs", len(csr.URIs))
	}
	id, err := identity.Parse(csr.URIs[0].String())
	if err != nil {
		return identity.ID{}, nil, fmt.Errorf("internal issuer: %w", err)
	}
	iss.mu.RLock()
	dns, ok := iss.names[id.String()]
	iss.mu.RUnlock()
	if !ok {
		return identity.ID{}, nil, fmt.Errorf("internal issuer: identity %s is not managed here: call Manager.Manage first", id)
	}
	for _, d := range csr.DNSNames {
		if !slices.Contains(dns, d) {
			dns = append(slices.Clone(dns), d)
		}
	}
	return id, dns, nil
}
