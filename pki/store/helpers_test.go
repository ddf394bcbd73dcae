package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/pki/ca"
	"github.com/drawbridge-proxy/drawbridge/pki/cert"
	"github.com/drawbridge-proxy/drawbridge/pki/identity"
	"github.com/drawbridge-proxy/drawbridge/pki/part"
)

// testKDF is cheap so tests open storage in milliseconds; production uses
// DefaultKDF.
var testKDF = KDF{Time: 1, MemoryKiB: 64, Threads: 1}

const testPassphrase = "correct horse battery staple"

// testConfig is what the tests take of a PKI configuration: a fresh state
// dir and pki's default lifetimes.
type testConfig struct {
	StateDir    string
	TrustDomain string
}

func newTestConfig(t testing.TB) testConfig {
	return testConfig{StateDir: filepath.Join(t.TempDir(), "state"), TrustDomain: "drawbridge.internal"}
}

func (c testConfig) CA() ca.Config {
	return ca.Config{
		TrustDomain: c.TrustDomain, RootLifetime: 10 * 365 * 24 * time.Hour, IntermediateLifetime: 30 * 24 * time.Hour,
		LeafLifetime: 24 * time.Hour, RenewalRatio: 1.0 / 3, RootRotateBefore: 365 * 24 * time.Hour,
		PermittedDNSDomains: []string{c.TrustDomain, "localhost"}, CheckInterval: time.Minute,
	}
}

func (c testConfig) Manager() cert.Config {
	return cert.Config{CheckInterval: time.Minute, RenewalRatio: 1.0 / 3}
}

// testPKI is a CA and a Manager over sealed storage: what fills a state
// dir with keys to seal.
type testPKI struct {
	cfg     testConfig
	storage *SealedStorage
	ca      *ca.CA
	mgr     *cert.Manager
}

func newTestPKI(t testing.TB, cfg testConfig, clock func() time.Time) *testPKI {
	t.Helper()
	ctx := context.Background()
	st, err := OpenStorageKDF(ctx, cfg.StateDir, []byte(testPassphrase), testKDF)
	if err != nil {
		t.Fatal(err)
	}
	d := part.Deps{Clock: clock}
	authority, err := ca.Open(ctx, cfg.CA(), st, d, ca.OpenOptions{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := cert.NewManager(cfg.Manager(), ca.NewIssuer(authority), st, d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mgr.Close() })
	return &testPKI{cfg: cfg, storage: st, ca: authority, mgr: mgr}
}

func (p *testPKI) manage(t testing.TB, service string, dns ...string) identity.ID {
	t.Helper()
	id := identity.MustNew(p.cfg.TrustDomain, service)
	if err := p.mgr.Manage(context.Background(), id, dns); err != nil {
		t.Fatal(err)
	}
	return id
}
