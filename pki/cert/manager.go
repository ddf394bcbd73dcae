package cert

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/drawbridge-proxy/drawbridge/pki/identity"
	"github.com/drawbridge-proxy/drawbridge/pki/metrics"
	"github.com/drawbridge-proxy/drawbridge/pki/part"
	"github.com/drawbridge-proxy/drawbridge/pki/trust"
	"github.com/drawbridge-proxy/drawbridge/telemetry"
)

// Manager owns a certmagic Config and Cache over an Authority and hands
// out *tls.Config values for the identities it manages. certmagic obtains,
// stores (sealed), caches and renews the leaves; the Manager picks the
// newest cached one on each handshake and verifies peers against the
// Authority's current trust bundle.
type Manager struct {
	auth    Authority
	magic   *certmagic.Config
	cache   *certmagic.Cache
	log     *slog.Logger
	metrics *metrics.Metrics
	now     func() time.Time
	check   time.Duration
	ratio   float64 // share of a leaf's life left when renewal starts

	retry *renewRetry // renewals after a failed one (RetryRenewals)

	mu      sync.Mutex             // guards managed
	managed map[string]managedCert // by SPIFFE ID

	closeOnce sync.Once

	// refusals holds back floods of refused-handshake lines (a scanner, a
	// client with a bad certificate retrying); metrics count every one.
	refusals telemetry.LogLimiter
}

type managedCert struct {
	id       identity.ID
	dnsNames []string
	key      string // certmagic storage key component, to catch collisions
}

// Config is what the Manager takes of the PKI's configuration
// (pki.Config.Manager builds it); every field must be set.
type Config struct {
	// CheckInterval is how often certmagic checks what to renew.
	CheckInterval time.Duration
	// RenewalRatio is the share of a leaf's life left when it is renewed.
	RenewalRatio float64
}

// Authority is where a Manager gets certificates and trust: the local CA
// (ca.Issuer) or, on an instance without the CA key, an enrollment client
// (enroll.Client).
type Authority interface {
	certmagic.Issuer
	// TrustBundle returns the current roots; called on every handshake.
	TrustBundle() *trust.Bundle
	// TrustDomain is the SPIFFE trust domain of the identities issued.
	TrustDomain() string
	// Register records the DNS names to put in id's certificates. The
	// Manager calls it before asking certmagic for id's certificate.
	Register(id identity.ID, dnsNames []string)
}

// NewManager builds a Manager over auth, storing certificates in storage
// (the sealed store). Close stops certmagic's maintenance. An auth that
// also has SetCertificateSource (an enrollment client) is given the
// Manager's certificates, to authenticate renewals with.
func NewManager(cfg Config, auth Authority, storage certmagic.Storage, deps part.Deps) (*Manager, error) {
	met, err := metrics.New(deps.Registerer)
	if err != nil {
		return nil, fmt.Errorf("registering metrics: %w", err)
	}
	m := &Manager{
		auth:    auth,
		log:     deps.Log().With("component", "pki.manager"),
		metrics: met,
		now:     deps.Now(),
		check:   cfg.CheckInterval,
		ratio:   cfg.RenewalRatio,
		managed: map[string]managedCert{},
		retry:   newRenewRetry(cfg.CheckInterval),
	}
	zl := deps.ZapLogger("certmagic")
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return m.magic, nil },
		RenewCheckInterval: cfg.CheckInterval,
		// Internal certificates carry no OCSP responder; checking costs nothing.
		OCSPCheckInterval: 24 * time.Hour,
		Logger:            zl,
	})
	m.magic = certmagic.New(m.cache, certmagic.Config{
		RenewalWindowRatio: cfg.RenewalRatio,
		Issuers:            []certmagic.Issuer{auth},
		Storage:            storage,
		Logger:             zl,
		OnEvent:            m.onEvent,
		DisableARI:         true,
		// A private CA has no OCSP responder: stapling stays off.
		OCSP:      certmagic.OCSPConfig{DisableStapling: true},
		KeySource: certmagic.StandardKeyGenerator{KeyType: certmagic.P256},
	})
	if cs, ok := auth.(interface {
		SetCertificateSource(func(identity.ID) (*tls.Certificate, error))
	}); ok {
		cs.SetCertificateSource(m.Certificate)
	}
	return m, nil
}

// Manage makes sure id has a certificate with dnsNames (obtaining or
// loading it now) and keeps it renewed. It is idempotent; calling it again
// with other DNS names renews the certificate with the new names.
func (m *Manager) Manage(ctx context.Context, id identity.ID, dnsNames []string) error {
	if id.TrustDomain() != m.auth.TrustDomain() || id.Path() == "" {
		return fmt.Errorf("managing %s: identity must be spiffe://%s/<service>", id, m.auth.TrustDomain())
	}
	if id.String() != normalized(id.String()) {
		return fmt.Errorf("managing %s: identity must be lower case (certmagic folds names)", id)
	}
	key := certmagic.StorageKeys.Safe(id.String())
	m.mu.Lock()
	for other, mc := range m.managed {
		if other != id.String() && mc.key == key {
			m.mu.Unlock()
			return fmt.Errorf("managing %s: its storage name collides with %s; rename one of them", id, other)
		}
	}
	prev, had := m.managed[id.String()]
	m.managed[id.String()] = managedCert{id: id, dnsNames: slices.Clone(dnsNames), key: key}
	m.mu.Unlock()

	m.auth.Register(id, dnsNames)
	if err := m.magic.ManageSync(ctx, []string{id.String()}); err != nil {
		return fmt.Errorf("managing %s: %w", id, err)
	}
	cert, err := m.Certificate(id)
	if err != nil {
		return fmt.Errorf("managing %s: %w", id, err)
	}
	if (had && !slices.Equal(prev.dnsNames, dnsNames)) || !hasAllNames(cert, dnsNames) {
		if err := m.renew(ctx, id); err != nil {
			return fmt.Errorf("managing %s: reissuing with new DNS names: %w", id, err)
		}
	}
	m.updateExpiry()
	return nil
}

func hasAllNames(c *tls.Certificate, names []string) bool {
	for _, n := range names {
		if !slices.Contains(c.Leaf.DNSNames, n) {
			return false
		}
	}
	return true
}

// Renew renews every managed certificate now, whatever its expiry: after
// `ca rotate`, so the old root can leave the bundle sooner. Handshakes keep
// the old certificate until the new one is cached.
func (m *Manager) Renew(ctx context.Context) error {
	m.mu.Lock()
	ids := make([]identity.ID, 0, len(m.managed))
	for _, mc := range m.managed {
		ids = append(ids, mc.id)
	}
	m.mu.Unlock()
	var errs []error
	for _, id := range ids {
		if err := m.renew(ctx, id); err != nil {
			errs = append(errs, fmt.Errorf("renewing %s: %w", id, err))
		}
	}
	m.updateExpiry()
	return errors.Join(errs...)
}

// renew force-renews id and swaps the cached certificate: the new one is
// cached before the old ones are removed, so no handshake finds none.
func (m *Manager) renew(ctx context.Context, id identity.ID) error {
	name := id.String()
	old := m.cache.AllMatchingCertificates(name)
	if err := m.magic.RenewCertSync(ctx, name, true); err != nil {
		return err
	}
	fresh, err := m.magic.CacheManagedCertificate(ctx, name)
	if err != nil {
		return err
	}
	var stale []string
	for _, c := range old {
		if c.Hash() != fresh.Hash() {
			stale = append(stale, c.Hash())
		}
	}
	m.cache.Remove(stale)
	return nil
}

// Certificate returns the newest cached certificate for id.
func (m *Manager) Certificate(id identity.ID) (*tls.Certificate, error) {
	name := id.String()
	var best *certmagic.Certificate
	for _, c := range m.cache.AllMatchingCertificates(name) {
		if c.Leaf == nil || !hasURI(c, name) {
			continue
		}
		if best == nil || c.Leaf.NotBefore.After(best.Leaf.NotBefore) {
			c := c
			best = &c
		}
	}
	if best == nil {
		return nil, fmt.Errorf("no certificate for %s: is it managed (Manager.Manage)?", id)
	}
	return &best.Certificate, nil
}

func hasURI(c certmagic.Certificate, id string) bool {
	return len(c.Leaf.URIs) == 1 && c.Leaf.URIs[0].String() == id
}

// TrustBundle returns the authority's current trust bundle.
func (m *Manager) TrustBundle() *trust.Bundle { return m.auth.TrustBundle() }

// TrustDomain returns the authority's trust domain.
func (m *Manager) TrustDomain() string { return m.auth.TrustDomain() }

// onEvent counts certmagic's obtain and renew outcomes.
func (m *Manager) onEvent(_ context.Context, event string, data map[string]any) error {
	switch event {
	case "cert_obtained", "cert_failed":
		op := "obtain"
		if r, _ := data["renewal"].(bool); r {
			op = "renew"
		}
		result := "success"
		if event == "cert_failed" {
			result = "failure"
		}
		m.metrics.Renewal(op, result)
	case "cached_managed_cert":
		m.updateExpiry()
	}
	return nil
}

// updateExpiry sets the expiry gauge of every managed leaf.
func (m *Manager) updateExpiry() {
	if m.metrics == nil {
		return
	}
	m.mu.Lock()
	ids := make([]identity.ID, 0, len(m.managed))
	for _, mc := range m.managed {
		ids = append(ids, mc.id)
	}
	m.mu.Unlock()
	for _, id := range ids {
		if c, err := m.Certificate(id); err == nil {
			m.metrics.SetExpiry("leaf", id.String(), c.Leaf.NotAfter)
			m.metrics.SetRenewal("leaf", id.String(), metrics.RenewalPoint(c.Leaf, m.magic.RenewalWindowRatio), m.check)
		}
	}
}

// Run refreshes the leaf expiry gauges every check interval until ctx
// ends. certmagic's own maintenance runs from NewManager to Close.
func (m *Manager) Run(ctx context.Context) error {
	return part.Loop(ctx, m.log, "certificate metrics", m.check, func(context.Context) error {
		m.updateExpiry()
		return nil
	})
}

// Close stops certmagic's maintenance. It is idempotent.
func (m *Manager) Close() error {
	m.closeOnce.Do(m.cache.Stop)
	return nil
}

func normalized(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// HeldCert describes a leaf the Manager holds, for status pages.
type HeldCert struct {
	Identity  string
	DNSNames  []string
	Issuer    string
	NotBefore time.Time
	NotAfter  time.Time
}

// Held lists the newest certificate of every managed identity, sorted by
// identity. An identity whose certificate is not cached yet is left out.
func (m *Manager) Held() []HeldCert {
	m.mu.Lock()
	ids := make([]identity.ID, 0, len(m.managed))
	for _, mc := range m.managed {
		ids = append(ids, mc.id)
	}
	m.mu.Unlock()
	slices.SortFunc(ids, func(a, b identity.ID) int { return strings.Compare(a.String(), b.String()) })
	out := make([]HeldCert, 0, len(ids))
	for _, id := range ids {
		c, err := m.Certificate(id)
		if err != nil {
			continue
		}
		out = append(out, HeldCert{Identity: id.String(), DNSNames: c.Leaf.DNSNames, Issuer: c.Leaf.Issuer.CommonName,
			NotBefore: c.Leaf.NotBefore, NotAfter: c.Leaf.NotAfter})
	}
	return out
}

// managedIDs lists the managed identities, in no order.
func (m *Manager) managedIDs() []identity.ID {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]identity.ID, 0, len(m.managed))
	for _, mc := range m.managed {
		ids = append(ids, mc.id)
	}
	return ids
}

// Ready reports an error naming each managed identity without a
// certificate valid now: the readiness check "certificates ready".
func (m *Manager) Ready() error {
	m.mu.Lock()
	ids := make([]identity.ID, 0, len(m.managed))
	for _, mc := range m.managed {
		ids = append(ids, mc.id)
	}
	m.mu.Unlock()
	now := m.now()
	var errs []error
	for _, id := range ids {
		c, err := m.Certificate(id)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: no certificate", id))
		case now.Before(c.Leaf.NotBefore) || !now.Before(c.Leaf.NotAfter):
			errs = append(errs, fmt.Errorf("%s: certificate not valid now (valid %s to %s)", id,
				c.Leaf.NotBefore.Format(time.RFC3339), c.Leaf.NotAfter.Format(time.RFC3339)))
		}
	}
	return errors.Join(errs...)
}
