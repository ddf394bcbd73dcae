package ca

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/drawbridge-proxy/drawbridge/pki/identity"
	"github.com/drawbridge-proxy/drawbridge/pki/layout"
	"github.com/drawbridge-proxy/drawbridge/pki/metrics"
	"github.com/drawbridge-proxy/drawbridge/pki/part"
	"github.com/drawbridge-proxy/drawbridge/pki/trust"
)

// ErrNoCA is returned by Open when the state dir holds no CA and creation
// was not asked for.
var ErrNoCA = errors.New("no CA in the state dir")

// CA is drawbridge's certificate authority: an active root (and, during a
// rotation, a retiring one), an intermediate that signs leaves, all kept
// in a certmagic Storage (a SealedStorage in production).
type CA struct {
	cfg     Config
	storage certmagic.Storage
	log     *slog.Logger
	metrics *metrics.Metrics
	now     func() time.Time

	mu       sync.Mutex // guards stateRaw; serialises every change to the CA state
	stateRaw []byte     // state.json as last loaded or written

	snap atomic.Pointer[caSnapshot]
}

// OpenOptions say what Open may do.
type OpenOptions struct {
	// Create makes a new CA when the state dir has none. Zero: an empty
	// state dir is an error wrapping ErrNoCA.
	Create bool
	// MustCreate refuses to open an existing CA (`drawbridge ca init`).
	MustCreate bool
}

// Open loads the CA from storage, or creates it as opts allow. cfg must
// have passed pki.Config's Defaults and Validate.
func Open(ctx context.Context, cfg Config, storage certmagic.Storage, deps part.Deps, opts OpenOptions) (*CA, error) {
	m, err := metrics.New(deps.Registerer)
	if err != nil {
		return nil, fmt.Errorf("registering metrics: %w", err)
	}
	ca := &CA{
		cfg:     cfg,
		storage: storage,
		log:     deps.Log().With("component", "pki.ca"),
		metrics: m,
		now:     deps.Now(),
	}
	err = ca.withLock(ctx, func() error {
		err := ca.refreshLocked(ctx)
		switch {
		case err == nil && opts.MustCreate:
			return errors.New("a CA already exists in the state dir: `ca init` makes a new one only in an empty state dir")
		case err == nil:
			return nil
		case !errors.Is(err, fs.ErrNotExist):
			return err
		case !opts.Create && !opts.MustCreate:
			return fmt.Errorf("%w: run `drawbridge ca init` first", ErrNoCA)
		}
		return ca.initLocked(ctx)
	})
	if err != nil {
		return nil, fmt.Errorf("opening CA: %w", err)
	}
	return ca, nil
}

func (ca *CA) initLocked(ctx context.Context) error {
	now := ca.now()
	root, rootKey, err := newRoot(ca.cfg.TrustDomain, 1, now, ca.cfg.RootLifetime)
	if err != nil {
		ca.metrics.IssueFailed("root")
		return err
	}
	inter, interKey, err := newIntermediate(root, rootKey, ca.cfg.TrustDomain, ca.cfg.PermittedDNSDomains, 1, now, ca.cfg.IntermediateLifetime)
	if err != nil {
		ca.metrics.IssueFailed("intermediate")
		return err
	}
	st := caState{
		Generation:   1,
		Roots:        []rootRecord{{certRecord: certRecord{CertPEM: trust.PEMCert(root), Key: keyName("root", root)}}},
		Intermediate: certRecord{CertPEM: trust.PEMCert(inter), Key: keyName("intermediate", inter)},
	}
	if err := ca.storeKey(ctx, st.Roots[0].Key, rootKey); err != nil {
		return err
	}
	if err := ca.storeKey(ctx, st.Intermediate.Key, interKey); err != nil {
		return err
	}
	if err := ca.commitLocked(ctx, st); err != nil {
		return err
	}
	ca.metrics.Issue("root", "local")
	ca.metrics.Issue("intermediate", "local")
	ca.log.Info("created CA", "trust_domain", ca.cfg.TrustDomain, "root", trust.CertSHA256(root), "root_expires", root.NotAfter)
	return nil
}

func keyName(kind string, c *x509.Certificate) string {
	return layout.CAKeyPrefix + kind + "-" + c.SerialNumber.Text(16) + ".key"
}

// TrustDomain returns the CA's SPIFFE trust domain.
func (ca *CA) TrustDomain() string { return ca.cfg.TrustDomain }

// TrustBundle returns the current trust bundle. It is cheap (an atomic
// load) and meant to be called on every handshake.
func (ca *CA) TrustBundle() *trust.Bundle { return ca.snap.Load().bundle }

// LeafLifetime is the lifetime of leaves this CA issues.
func (ca *CA) LeafLifetime() time.Duration { return ca.cfg.LeafLifetime }

// LeafRequest describes a leaf beyond its CSR.
type LeafRequest struct {
	// ID is the SPIFFE ID; it must be in the CA's trust domain.
	ID identity.ID
	// DNSNames are the DNS SANs; each must be within the permitted DNS
	// domains. Zero: none.
	DNSNames []string
	// Lifetime is capped at the CA's leaf lifetime. Zero: that lifetime.
	Lifetime time.Duration
	// Via names the path that asked, for metrics: "local" or "enrollment".
	Via string
}

// Sign issues a leaf for csr's public key. The chain returned starts with
// the leaf and holds the intermediate and, during a rotation, the cross
// certificate; never the root.
func (ca *CA) Sign(ctx context.Context, csr *x509.CertificateRequest, req LeafRequest) ([]*x509.Certificate, error) {
	chain, err := ca.sign(ctx, csr, req)
	if err != nil {
		ca.metrics.IssueFailed("leaf")
		return nil, err
	}
	via := req.Via
	if via != "enrollment" {
		via = "local"
	}
	ca.metrics.Issue("leaf", via)
	return chain, nil
}

func (ca *CA) sign(ctx context.Context, csr *x509.CertificateRequest, req LeafRequest) ([]*x509.Certificate, error) {
	if err := ca.checkLeafRequest(req); err != nil {
		return nil, err
	}
	lifetime := ca.cfg.LeafLifetime
	if req.Lifetime > 0 && req.Lifetime < lifetime {
		lifetime = req.Lifetime
	}
	u, err := url.Parse(req.ID.String())
	if err != nil {
		return nil, err
	}
	ca.mu.Lock()
	defer ca.mu.Unlock()
	// Reading needs no storage lock: the state file is replaced atomically.
	if err := ca.refreshLocked(ctx); err != nil {
		return nil, fmt.Errorf("issuing a certificate for %s: %w", req.ID, err)
	}
	s := ca.snap.Load()
	leaf, err := newLeaf(csr, leafRequest{ID: u, DNSNames: req.DNSNames, Lifetime: lifetime}, s.inter, s.interKey, ca.now())
	if err != nil {
		return nil, fmt.Errorf("issuing a certificate for %s: %w", req.ID, err)
	}
	chain := []*x509.Certificate{leaf, s.inter}
	if s.cross != nil {
		chain = append(chain, s.cross)
	}
	if leaf.NotAfter.After(s.state.Roots[0].LastLeafExpiry) {
		// Record a bound a leaf lifetime ahead (never past the
		// intermediate), so the state is written about once per leaf
		// lifetime rather than per leaf. Over-estimating only keeps a
		// retiring root in the bundle a little longer.
		bound := minTime(leaf.NotAfter.Add(ca.cfg.LeafLifetime), s.inter.NotAfter)
		if err := ca.recordLeafExpiry(ctx, trust.CertSHA256(s.roots[0]), bound); err != nil {
			return nil, fmt.Errorf("issuing a certificate for %s: %w", req.ID, err)
		}
	}
	return chain, nil
}

// recordLeafExpiry raises the LastLeafExpiry of the root with fingerprint
// fp to at least t. The root may have been rotated out by another process
// meanwhile; it is found by fingerprint. ca.mu must be held.
func (ca *CA) recordLeafExpiry(ctx context.Context, fp string, t time.Time) error {
	return ca.storageLocked(ctx, func() error {
		if err := ca.refreshLocked(ctx); err != nil {
			return err
		}
		s := ca.snap.Load()
		st := cloneState(s.state)
		for i, r := range s.roots {
			if trust.CertSHA256(r) == fp && t.After(st.Roots[i].LastLeafExpiry) {
				st.Roots[i].LastLeafExpiry = t
				return ca.commitLocked(ctx, st)
			}
		}
		return nil
	})
}

func (ca *CA) checkLeafRequest(req LeafRequest) error {
	if req.ID.IsZero() || req.ID.Path() == "" {
		return fmt.Errorf("identity %q names no service", req.ID)
	}
	if req.ID.TrustDomain() != ca.cfg.TrustDomain {
		return fmt.Errorf("identity %s is outside trust domain %s", req.ID, ca.cfg.TrustDomain)
	}
	for _, d := range req.DNSNames {
		if !dnsPermitted(d, ca.cfg.PermittedDNSDomains) {
			return fmt.Errorf("DNS name %q is outside permitted_dns_domains %v", d, ca.cfg.PermittedDNSDomains)
		}
	}
	return nil
}

// dnsPermitted mirrors RFC 5280's DNS name constraint: equal to a permitted
// domain or below it.
func dnsPermitted(name string, permitted []string) bool {
	if CheckDNSName(name) != nil {
		return false
	}
	for _, p := range permitted {
		if name == p || strings.HasSuffix(name, "."+p) {
			return true
		}
	}
	return false
}

func cloneState(st caState) caState {
	st.Roots = append([]rootRecord(nil), st.Roots...)
	return st
}

// CertInfo describes a CA certificate for `ca status`.
type CertInfo struct {
	Subject     string    `json:"subject"`
	Serial      string    `json:"serial"`
	Fingerprint string    `json:"sha256_fingerprint"`
	NotBefore   time.Time `json:"not_before"`
	NotAfter    time.Time `json:"not_after"`
}

// RootInfo describes a root in the trust bundle.
type RootInfo struct {
	CertInfo
	// Active is true for the root that signs the current intermediate.
	Active bool `json:"active"`
	// LastLeafExpiry is when the last leaf issued under this root expires;
	// a retiring root leaves the bundle then.
	LastLeafExpiry time.Time `json:"last_leaf_expiry"`
}

// Status is what `drawbridge ca status` prints.
type Status struct {
	TrustDomain  string     `json:"trust_domain"`
	Roots        []RootInfo `json:"roots"`
	Intermediate CertInfo   `json:"intermediate"`
	// Rotating is true while a retiring root is still in the bundle.
	Rotating bool `json:"rotating"`
}

func certInfo(c *x509.Certificate) CertInfo {
	return CertInfo{Subject: c.Subject.CommonName, Serial: c.SerialNumber.Text(16), Fingerprint: trust.CertSHA256(c), NotBefore: c.NotBefore, NotAfter: c.NotAfter}
}

// Status describes the CA as currently loaded.
func (ca *CA) Status() Status {
	s := ca.snap.Load()
	st := Status{TrustDomain: ca.cfg.TrustDomain, Intermediate: certInfo(s.inter), Rotating: len(s.roots) > 1}
	for i, r := range s.roots {
		st.Roots = append(st.Roots, RootInfo{CertInfo: certInfo(r), Active: i == 0, LastLeafExpiry: s.state.Roots[i].LastLeafExpiry})
	}
	return st
}
