package pki

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/pki/identity"
)

func newCSR(t testing.TB) *x509.CertificateRequest {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, k)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

func verifyChain(chain []*x509.Certificate, roots *x509.CertPool, now time.Time) error {
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	return err
}

func TestCAIssuesConstrainedShortLivedLeaves(t *testing.T) {
	clock := newFakeClock()
	p := newTestPKI(t, testConfig(t), clock.Now)
	s := p.ca.snap.Load()
	root, inter := s.roots[0], s.inter

	if got := root.NotAfter.Sub(clock.Now()); got < DefaultRootLifetime-time.Minute {
		t.Errorf("root lives %v, want about %v", got, DefaultRootLifetime)
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

	id := p.id("api")
	chain, err := p.ca.Sign(context.Background(), newCSR(t), LeafRequest{ID: id, DNSNames: []string{"api.drawbridge.internal"}})
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
	if life := leaf.NotAfter.Sub(clock.Now()); life > DefaultLeafLifetime || life < DefaultLeafLifetime-time.Second {
		t.Errorf("leaf lives %v from now, want %v", life, DefaultLeafLifetime)
	}
	if leaf.IsCA {
		t.Error("leaf is a CA")
	}
	if err := verifyChain(chain, p.ca.TrustBundle().Pool(), clock.Now()); err != nil {
		t.Errorf("leaf does not verify: %v", err)
	}

	// Refused requests.
	for name, req := range map[string]LeafRequest{
		"other trust domain": {ID: identity.MustNew("evil.internal", "api")},
		"no service":         {ID: identity.MustNew("drawbridge.internal", "")},
		"DNS not permitted":  {ID: id, DNSNames: []string{"www.example.com"}},
	} {
		if _, err := p.ca.Sign(context.Background(), newCSR(t), req); err == nil {
			t.Errorf("%s: issued, want refusal", name)
		}
	}

	// A leaf never outlives its intermediate.
	clock.Advance(inter.NotAfter.Sub(clock.Now()) - time.Hour)
	chain, err = p.ca.Sign(context.Background(), newCSR(t), LeafRequest{ID: id})
	if err != nil {
		t.Fatal(err)
	}
	if !chain[0].NotAfter.Equal(inter.NotAfter) {
		t.Errorf("leaf expires %v, after/before its intermediate %v; want capped at it", chain[0].NotAfter, inter.NotAfter)
	}
}

func TestIntermediateRenewedWithAThirdLeft(t *testing.T) {
	clock := newFakeClock()
	p := newTestPKI(t, testConfig(t), clock.Now)
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

// TestRootRotation walks a rotation: both roots in the bundle, new leaves
// chain to the new root, verifiable by a peer that trusts only the old
// root (through the cross certificate); the old root leaves once its last
// leaf expired.
func TestRootRotation(t *testing.T) {
	clock := newFakeClock()
	p := newTestPKI(t, testConfig(t), clock.Now)
	ctx := context.Background()
	id := p.id("api")
	oldRoot := p.ca.TrustBundle().Roots()[0]
	oldOnly := x509.NewCertPool()
	oldOnly.AddCert(oldRoot)

	oldChain, err := p.ca.Sign(ctx, newCSR(t), LeafRequest{ID: id})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.ca.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.ca.Rotate(ctx); !errors.Is(err, ErrRotationInProgress) {
		t.Errorf("second rotation: got %v, want ErrRotationInProgress", err)
	}
	b := p.ca.TrustBundle()
	if len(b.Roots()) != 2 || !b.Roots()[1].Equal(oldRoot) {
		t.Fatalf("bundle during rotation has %d roots, want new and old", len(b.Roots()))
	}
	newRoot := b.Roots()[0]
	newOnly := x509.NewCertPool()
	newOnly.AddCert(newRoot)

	newChain, err := p.ca.Sign(ctx, newCSR(t), LeafRequest{ID: id})
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		chain []*x509.Certificate
		roots *x509.CertPool
	}{
		"old leaf, bundle":        {oldChain, b.Pool()},
		"new leaf, bundle":        {newChain, b.Pool()},
		"new leaf, old root only": {newChain, oldOnly},
		"new leaf, new root only": {newChain, newOnly},
	} {
		if err := verifyChain(tc.chain, tc.roots, clock.Now()); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}

	// Before the old root's last leaf expires it stays.
	clock.Advance(oldChain[0].NotAfter.Sub(clock.Now()) - time.Minute)
	if err := p.ca.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(p.ca.TrustBundle().Roots()); n != 2 {
		t.Fatalf("old root dropped while a leaf under it was valid: %d roots", n)
	}
	// The recorded bound is at or after the old leaf's expiry (it is
	// recorded a leaf lifetime ahead, to write the state less often).
	bound := p.ca.Status().Roots[1].LastLeafExpiry
	if bound.Before(oldChain[0].NotAfter) {
		t.Fatalf("old root's last leaf expiry recorded as %v, before the leaf's %v", bound, oldChain[0].NotAfter)
	}
	clock.Advance(bound.Sub(clock.Now()) + time.Minute)
	if err := p.ca.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	after := p.ca.TrustBundle()
	if n := len(after.Roots()); n != 1 || !after.Roots()[0].Equal(newRoot) {
		t.Fatalf("after the last old leaf expired: %d roots, want only the new one", n)
	}
	chain, err := p.ca.Sign(ctx, newCSR(t), LeafRequest{ID: id})
	if err != nil {
		t.Fatal(err)
	}
	if len(chain) != 2 {
		t.Errorf("after rotation the chain has %d certificates, want leaf and intermediate (no cross)", len(chain))
	}
	st := p.ca.Status()
	if st.Rotating || len(st.Roots) != 1 || !st.Roots[0].Active {
		t.Errorf("status after rotation: %+v", st)
	}
}

func TestAutomaticRotationBeforeRootExpiry(t *testing.T) {
	clock := newFakeClock()
	cfg := testConfig(t)
	cfg.RootLifetime = 48 * time.Hour
	cfg.IntermediateLifetime = 4 * time.Hour
	cfg.LeafLifetime = time.Hour
	cfg.RootRotateBefore = 12 * time.Hour
	p := newTestPKI(t, cfg, clock.Now)
	root := p.ca.TrustBundle().Roots()[0]
	clock.Advance(root.NotAfter.Sub(clock.Now()) - 12*time.Hour + time.Minute)
	if err := p.ca.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if b := p.ca.TrustBundle().Roots(); len(b) != 2 || b[0].Equal(root) {
		t.Fatalf("no rotation within root_rotate_before of expiry")
	}
}

// TestCAStateSharedBetweenProcesses opens the same state dir twice (the
// gateway and the CLI): a rotation by one is seen by the other.
func TestCAStateSharedBetweenProcesses(t *testing.T) {
	cfg := testConfig(t)
	p := newTestPKI(t, cfg, nil)
	p.manage(t, "api") // a leaf under the first root keeps it in the bundle
	st2, err := openStorage(context.Background(), cfg.StateDir, []byte(testPassphrase), testKDF)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := OpenCA(context.Background(), cfg, st2, Deps{}, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenCA(context.Background(), cfg, st2, Deps{}, OpenOptions{MustCreate: true}); err == nil {
		t.Error("ca init over an existing CA succeeded")
	}
	if err := cli.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := p.ca.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(p.ca.TrustBundle().Roots()); n != 2 {
		t.Errorf("gateway sees %d roots after the CLI rotated, want 2", n)
	}
}
