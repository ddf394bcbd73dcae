package ca

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"path/filepath"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
	"github.com/drawbridge-proxy/drawbridge/pki/identity"
	"github.com/drawbridge-proxy/drawbridge/pki/part"
	"github.com/drawbridge-proxy/drawbridge/pki/pkitest"
	"github.com/drawbridge-proxy/drawbridge/pki/store"
)

type testCA struct {
	cfg     Config
	storage *store.SealedStorage
	ca      *CA
}

// newTestCA opens a CA with pki's default lifetimes over sealed storage
// with a cheap key derivation.
func newTestCA(t *testing.T, clock func() time.Time) *testCA {
	t.Helper()
	cfg := Config{
		TrustDomain: "drawbridge.internal", RootLifetime: 10 * 365 * 24 * time.Hour, IntermediateLifetime: 30 * 24 * time.Hour,
		LeafLifetime: 24 * time.Hour, RenewalRatio: 1.0 / 3, RootRotateBefore: 365 * 24 * time.Hour,
		PermittedDNSDomains: []string{"drawbridge.internal", "localhost"}, CheckInterval: time.Minute,
	}
	ctx := context.Background()
	st, err := store.OpenStorageKDF(ctx, filepath.Join(t.TempDir(), "state"), []byte("correct horse battery staple"), store.KDF{Time: 1, MemoryKiB: 64, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	authority, err := Open(ctx, cfg, st, part.Deps{Clock: clock}, OpenOptions{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cfg: cfg, storage: st, ca: authority}
}

func TestCAIssuesConstrainedShortLivedLeaves(t *testing.T) {
	clock := drawtest.NewClock()
	p := newTestCA(t, clock.Now)
	s := p.ca.snap.Load()
	root, inter := s.roots[0], s.inter

	if got := root.NotAfter.Sub(clock.Now()); got < p.cfg.RootLifetime-time.Minute {
		t.Errorf("root lives %v, want about %v", got, p.cfg.RootLifetime)
	}
	if pub, ok := root.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("root key is %T, want ECDSA P-256", root.PublicKey)
	}
	if got := inter.PermittedURIDomains; len(got) != 1 || got[0] != "drawbridge.internal" {
		t.Errorf("intermediate URI constraint %v, want [drawbridge.internal]", got)
	}
	if !inter.PermittedDNSDomainsCritical || len(inter.PermittedDNSDomains) == 0 || len(inter.ExcludedIPRanges) != 2 {
		t.Errorf("intermediate lacks name constraints: %v %v", inter.PermittedDNSDomains, inter.ExcludedIPRanges)
	}

	id := identity.MustNew(p.cfg.TrustDomain, "api")
	chain, err := p.ca.Sign(context.Background(), pkitest.CSR(t), LeafRequest{ID: id, DNSNames: []string{"api.drawbridge.internal"}})
	if err != nil {
		t.Fatal(err)
	}
	leaf := chain[0]
	if leaf.SerialNumber.BitLen() != 129 {
		t.Errorf("serial has %d bits, want 128 random bits under a set bit 128", leaf.SerialNumber.BitLen())
	}
	if got, err := identity.FromCertificate(leaf); err != nil || got != id {
		t.Errorf("leaf identity %v, %v; want %v", got, err, id)
	}
	// x509 times have a one-second resolution.
	if life := leaf.NotAfter.Sub(clock.Now()); life > p.cfg.LeafLifetime || life < p.cfg.LeafLifetime-time.Second {
		t.Errorf("leaf lives %v from now, want %v", life, p.cfg.LeafLifetime)
	}
	if leaf.IsCA {
		t.Error("leaf is a CA")
	}
	if err := pkitest.VerifyClientChain(chain, p.ca.TrustBundle().Pool(), clock.Now()); err != nil {
		t.Errorf("leaf does not verify: %v", err)
	}

	// Refused requests.
	for name, req := range map[string]LeafRequest{
		"other trust domain": {ID: identity.MustNew("evil.internal", "api")},
		"no service":         {ID: identity.MustNew("drawbridge.internal", "")},
		"DNS not permitted":  {ID: id, DNSNames: []string{"www.example.com"}},
	} {
		if _, err := p.ca.Sign(context.Background(), pkitest.CSR(t), req); err == nil {
			t.Errorf("%s: issued, want refusal", name)
		}
	}

	// A leaf never outlives its intermediate.
	clock.Advance(inter.NotAfter.Sub(clock.Now()) - time.Hour)
	chain, err = p.ca.Sign(context.Background(), pkitest.CSR(t), LeafRequest{ID: id})
	if err != nil {
		t.Fatal(err)
	}
	if !chain[0].NotAfter.Equal(inter.NotAfter) {
		t.Errorf("leaf expires %v, after/before its intermediate %v; want capped at it", chain[0].NotAfter, inter.NotAfter)
	}
}

func TestIntermediateRenewedWithAThirdLeft(t *testing.T) {
	clock := drawtest.NewClock()
	p := newTestCA(t, clock.Now)
	first := p.ca.snap.Load().inter
	life := first.NotAfter.Sub(first.NotBefore)

	clock.Advance(first.NotAfter.Sub(clock.Now()) - life/3 - time.Minute)
	if err := p.ca.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !p.ca.snap.Load().inter.Equal(first) {
		t.Fatal("intermediate renewed before a third of its life was left")
	}
	clock.Advance(2 * time.Minute)
	if err := p.ca.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	second := p.ca.snap.Load().inter
	if second.Equal(first) {
		t.Fatal("intermediate not renewed with a third of its life left")
	}
	if err := second.CheckSignatureFrom(p.ca.TrustBundle().Roots()[0]); err != nil {
		t.Errorf("new intermediate not signed by the root: %v", err)
	}
	if exists := p.storage.Exists(context.Background(), p.ca.snap.Load().state.Intermediate.Key); !exists {
		t.Error("new intermediate key not stored")
	}
}
