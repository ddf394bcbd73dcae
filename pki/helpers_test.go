package pki

import (
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
	"github.com/drawbridge-proxy/drawbridge/pki/ca"
	"github.com/drawbridge-proxy/drawbridge/pki/cert"
	"github.com/drawbridge-proxy/drawbridge/pki/identity"
	"github.com/drawbridge-proxy/drawbridge/pki/part"
	"github.com/drawbridge-proxy/drawbridge/pki/store"
)

// testKDF is cheap so tests open storage in milliseconds; production uses
// defaultKDF.
var testKDF = store.KDF{Time: 1, MemoryKiB: 64, Threads: 1}

const testPassphrase = "correct horse battery staple"

// testConfig is a valid Config in a fresh temp dir with a passphrase file.
func testConfig(t testing.TB) Config {
	t.Helper()
	dir := t.TempDir()
	pf := filepath.Join(dir, "passphrase")
	if err := os.WriteFile(pf, []byte(testPassphrase+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{StateDir: filepath.Join(dir, "state"), PassphraseFile: pf}
	cfg.Defaults()
	return cfg
}

type testPKI struct {
	cfg     Config
	storage *store.SealedStorage
	ca      *ca.CA
	mgr     *cert.Manager
	reg     *prometheus.Registry
}

// newTestPKI opens storage, a CA and a Manager for cfg.
func newTestPKI(t testing.TB, cfg Config, clock func() time.Time) *testPKI {
	t.Helper()
	return newTestPKIDeps(t, cfg, part.Deps{Clock: clock})
}

// newTestPKIDeps is newTestPKI with deps; a registry of its own replaces
// their Registerer.
func newTestPKIDeps(t testing.TB, cfg Config, d part.Deps) *testPKI {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	ctx := context.Background()
	st, err := store.OpenStorageKDF(ctx, cfg.StateDir, []byte(testPassphrase), testKDF)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	d.Registerer = reg
	authority, err := ca.Open(ctx, cfg.CA(), st, d, ca.OpenOptions{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := cert.NewManager(cfg.Manager(), ca.NewIssuer(authority), st, d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mgr.Close() })
	return &testPKI{cfg: cfg, storage: st, ca: authority, mgr: mgr, reg: reg}
}

func (p *testPKI) id(service string) identity.ID {
	return identity.MustNew(p.cfg.TrustDomain, service)
}

func (p *testPKI) manage(t testing.TB, service string, dns ...string) identity.ID {
	t.Helper()
	id := p.id(service)
	if err := p.mgr.Manage(context.Background(), id, dns); err != nil {
		t.Fatal(err)
	}
	return id
}

// serveMutual serves mutual TLS as id, admitting only the allowed
// identities, and returns the address.
func (p *testPKI) serveMutual(t testing.TB, id identity.ID, allowed ...string) string {
	t.Helper()
	allow, err := identity.NewAllowList(allowed)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := p.mgr.ServerConfig(cert.ServerOptions{Identity: id, Mutual: true, Allow: allow})
	if err != nil {
		t.Fatal(err)
	}
	return serveTLS(t, p.mgr, srv)
}

// serveTLS serves cfg on 127.0.0.1:0 through the Manager's Listener; each
// accepted connection gets "ok\n" and is closed. It returns the address.
func serveTLS(t testing.TB, m *cert.Manager, cfg *tls.Config) string {
	t.Helper()
	inner := drawtest.Listen(t)
	drawtest.Serve(t, m.Listener(inner, cfg, cert.ListenerOptions{HandshakeTimeout: 5 * time.Second}), drawtest.Greet)
	return inner.Addr().String()
}

// counterValue reads the counter name with the label values labels from
// reg; zero when it has not been counted yet.
func counterValue(t testing.TB, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for i, l := range m.GetLabel() {
				if l.GetValue() != labels[i] {
					continue metric
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}
