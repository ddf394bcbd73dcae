package pki

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/drawbridge-proxy/drawbridge/pki/store"
	"github.com/drawbridge-proxy/drawbridge/pki/trust"
)

// TestOpenComposes runs Open twice on one state dir: the CA is created,
// then found again, with the default (production) key derivation.
func TestOpenComposes(t *testing.T) {
	cfg := testConfig(t)
	ctx := context.Background()
	p1, err := Open(ctx, cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	root := trust.CertSHA256(p1.CA.TrustBundle().Roots()[0])
	_ = p1.Close()
	p2, err := Open(ctx, cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	if got := trust.CertSHA256(p2.CA.TrustBundle().Roots()[0]); got != root {
		t.Errorf("reopened root %s, want %s", got, root)
	}
	if p2.EnrollHandler == nil || p2.Manager == nil {
		t.Error("Open left the enrollment handler or the Manager nil")
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p2.Run(runCtx) }()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// TestConcurrentFirstOpen: processes sharing a new volume (a gateway and its
// helpers) open it at once; they must end with one keyring, so what each
// seals the others can open.
func TestConcurrentFirstOpen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	ctx := context.Background()
	const n = 6
	stores := make([]*store.SealedStorage, n)
	errs := make([]error, n)
	start := make(chan struct{})
	done := make(chan int)
	for i := range n {
		go func() {
			<-start
			stores[i], errs[i] = store.OpenStorageKDF(ctx, dir, []byte(testPassphrase), testKDF)
			done <- i
		}()
	}
	close(start)
	for range n {
		<-done
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("opener %d: %v", i, err)
		}
		if err := stores[i].Store(ctx, fmt.Sprintf("x/%d.key", i), []byte(fmt.Sprintf("value %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	again, err := store.OpenStorageKDF(ctx, dir, []byte(testPassphrase), testKDF)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		got, err := again.Load(ctx, fmt.Sprintf("x/%d.key", i))
		if err != nil || string(got) != fmt.Sprintf("value %d", i) {
			t.Errorf("value sealed by opener %d does not open under the state dir's keyring: %q, %v", i, got, err)
		}
	}
}

// generatedKeyPEM is a fresh private key in PEM, made for the test: no key
// material lives in the repository.
