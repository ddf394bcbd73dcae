package pki

import (
	"context"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
	"github.com/drawbridge-proxy/drawbridge/pki/ca"
	"github.com/drawbridge-proxy/drawbridge/pki/part"
	"github.com/drawbridge-proxy/drawbridge/pki/pkitest"
	"github.com/drawbridge-proxy/drawbridge/pki/store"
)

// TestRootRotation walks a rotation: both roots in the bundle, new leaves
// chain to the new root, verifiable by a peer that trusts only the old
// root (through the cross certificate); the old root leaves once its last
// leaf expired.
func TestRootRotation(t *testing.T) {
	clock := drawtest.NewClock()
	p := newTestPKI(t, testConfig(t), clock.Now)
	ctx := context.Background()
	id := p.id("api")
	oldRoot := p.ca.TrustBundle().Roots()[0]
	oldOnly := x509.NewCertPool()
	oldOnly.AddCert(oldRoot)

	oldChain, err := p.ca.Sign(ctx, pkitest.CSR(t), ca.LeafRequest{ID: id})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.ca.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.ca.Rotate(ctx); !errors.Is(err, ca.ErrRotationInProgress) {
		t.Errorf("second rotation: got %v, want ErrRotationInProgress", err)
	}
	b := p.ca.TrustBundle()
	if len(b.Roots()) != 2 || !b.Roots()[1].Equal(oldRoot) {
		t.Fatalf("bundle during rotation has %d roots, want new and old", len(b.Roots()))
	}
	newRoot := b.Roots()[0]
	newOnly := x509.NewCertPool()
	newOnly.AddCert(newRoot)

	newChain, err := p.ca.Sign(ctx, pkitest.CSR(t), ca.LeafRequest{ID: id})
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
		if err := pkitest.VerifyClientChain(tc.chain, tc.roots, clock.Now()); err != nil {
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
	chain, err := p.ca.Sign(ctx, pkitest.CSR(t), ca.LeafRequest{ID: id})
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
	clock := drawtest.NewClock()
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
	st2, err := store.OpenStorageKDF(context.Background(), cfg.StateDir, []byte(testPassphrase), testKDF)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := ca.Open(context.Background(), cfg.CA(), st2, part.Deps{}, ca.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.Open(context.Background(), cfg.CA(), st2, part.Deps{}, ca.OpenOptions{MustCreate: true}); err == nil {
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
