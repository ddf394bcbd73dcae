package backup

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
	"github.com/drawbridge-proxy/drawbridge/pki/ca"
	"github.com/drawbridge-proxy/drawbridge/pki/cert"
	"github.com/drawbridge-proxy/drawbridge/pki/identity"
	"github.com/drawbridge-proxy/drawbridge/pki/part"
	"github.com/drawbridge-proxy/drawbridge/pki/pkitest"
	"github.com/drawbridge-proxy/drawbridge/pki/store"
	"github.com/drawbridge-proxy/drawbridge/pki/trust"
)

// TestBackupWipeRestore is the disaster drill: back up a live CA, wipe its
// state dir, restore it, and check that
//   - the restored CA has the same root, and the certificates certmagic
//     stored come back as they were (not issued again);
//   - a client certificate issued before the backup is accepted by a
//     mutual TLS server built from the restored state (a real handshake),
//     and one from another CA is not;
//   - a leaf issued after the restore chains to the same root, and old and
//     new leaves both verify against the restored trust bundle.
func TestBackupWipeRestore(t *testing.T) {
	ctx := context.Background()
	st := newLiveState(t)
	oldRoot := st.ca.TrustBundle().Roots()[0]
	oldClient := st.cert(t, st.web)
	oldServerSerial := st.cert(t, st.api).Leaf.SerialNumber
	cfgFile := filepath.Join(t.TempDir(), "drawbridge.yaml")
	writeFile(t, cfgFile, "listeners: {}\n")

	out := filepath.Join(t.TempDir(), "drill.backup")
	if err := testBacker(t, st, Config{ConfigFile: cfgFile}, Deps{}).Backup(ctx, out); err != nil {
		t.Fatal(err)
	}
	if err := st.mgr.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(st.cfg.StateDir); err != nil {
		t.Fatal(err)
	}

	cfgOut := filepath.Join(t.TempDir(), "restored.yaml")
	res, err := RestoreFile(ctx, out, []byte(testPassphrase), RestoreOptions{StateDir: st.cfg.StateDir, ConfigOut: cfgOut}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if res.CA == nil || res.CA.Roots[0].Fingerprint != trust.CertSHA256(oldRoot) {
		t.Fatalf("restore reports CA %+v, want root %s", res.CA, trust.CertSHA256(oldRoot))
	}
	if b, err := os.ReadFile(cfgOut); err != nil || string(b) != "listeners: {}\n" {
		t.Errorf("restored config: %q, %v", b, err)
	}

	// Open the restored state as the gateway does, without creating anything.
	storage, err := store.OpenStorage(ctx, st.cfg.StateDir, []byte(testPassphrase))
	if err != nil {
		t.Fatal(err)
	}
	authority, err := ca.Open(ctx, st.cfg.CA(), storage, part.Deps{}, ca.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !authority.TrustBundle().Contains(oldRoot) || len(authority.TrustBundle().Roots()) != 1 {
		t.Fatal("the restored trust bundle is not the old root")
	}
	mgr, err := cert.NewManager(st.cfg.Manager(), ca.NewIssuer(authority), storage, part.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mgr.Close() })
	if err := mgr.Manage(ctx, st.api, []string{"localhost"}); err != nil {
		t.Fatal(err)
	}
	srvCert, err := mgr.Certificate(st.api)
	if err != nil {
		t.Fatal(err)
	}
	if srvCert.Leaf.SerialNumber.Cmp(oldServerSerial) != 0 {
		t.Errorf("the server certificate was issued again (serial %x, was %x): certmagic's storage was not restored", srvCert.Leaf.SerialNumber, oldServerSerial)
	}

	srvCfg, err := mgr.ServerConfig(cert.ServerOptions{Identity: st.api, Mutual: true})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveMutual(t, mgr, srvCfg)
	client := func(cert tls.Certificate) *tls.Config {
		return &tls.Config{
			Certificates: []tls.Certificate{cert},
			RootCAs:      authority.TrustBundle().Pool(),
			ServerName:   "localhost",
			MinVersion:   tls.VersionTLS13,
		}
	}
	if err := drawtest.DialGreeting(addr, client(*oldClient)); err != nil {
		t.Errorf("a client certificate issued before the backup was refused: %v", err)
	}
	foreign := pkitest.NewCA(t, st.cfg.TrustDomain).Leaf(t, "web")
	if err := drawtest.DialGreeting(addr, client(foreign)); err == nil {
		t.Error("a client certificate from another CA was accepted by the restored server")
	}

	// A leaf issued now chains to the same root; old and new both verify.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		t.Fatal(err)
	}
	newChain, err := authority.Sign(ctx, csr, ca.LeafRequest{ID: identity.MustNew(st.cfg.TrustDomain, "after-restore")})
	if err != nil {
		t.Fatal(err)
	}
	for name, chain := range map[string][]*x509.Certificate{"old": parseChain(t, oldClient), "new": newChain} {
		verified := verify(t, authority.TrustBundle(), chain)
		if root := verified[len(verified)-1]; !root.Equal(oldRoot) {
			t.Errorf("%s leaf chains to %s, want the old root", name, root.Subject)
		}
	}
}

func parseChain(t *testing.T, c *tls.Certificate) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for _, der := range c.Certificate {
		x, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, x)
	}
	return out
}

func verify(t *testing.T, b *trust.Bundle, chain []*x509.Certificate) []*x509.Certificate {
	t.Helper()
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	chains, err := chain[0].Verify(x509.VerifyOptions{Roots: b.Pool(), Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		t.Fatalf("%s does not verify against the restored bundle: %v", chain[0].URIs, err)
	}
	return chains[0]
}

// serveMutual serves cfg on 127.0.0.1:0 through the Manager's listener;
// each connection gets "ok\n" once its handshake succeeded.
func serveMutual(t *testing.T, m *cert.Manager, cfg *tls.Config) string {
	t.Helper()
	inner := drawtest.Listen(t)
	drawtest.Serve(t, m.Listener(inner, cfg, cert.ListenerOptions{HandshakeTimeout: 5 * time.Second}), drawtest.Greet)
	return inner.Addr().String()
}

// TestBackupAfterAPassphraseRotation: once the gateway has re-sealed the
// state dir under a new passphrase (the rotated secret), backups are made
// and restored with the new one; the old one opens neither.
func TestBackupAfterAPassphraseRotation(t *testing.T) {
	ctx := context.Background()
	st := newLiveState(t)
	const newPass = "the rotated passphrase, long enough"
	if err := st.storage.Reseal(ctx, []byte(newPass)); err != nil {
		t.Fatal(err)
	}
	writeFile(t, st.cfg.PassphraseFile, newPass+"\n")
	out := filepath.Join(t.TempDir(), "rotated.backup")
	if err := testBacker(t, st, Config{}, Deps{}).Backup(ctx, out); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "state")
	if _, err := RestoreFile(ctx, out, []byte(testPassphrase), RestoreOptions{StateDir: dir}, Deps{}); !errors.Is(err, store.ErrWrongPassphrase) {
		t.Fatalf("restore with the old passphrase: got %v, want ErrWrongPassphrase", err)
	}
	res, err := RestoreFile(ctx, out, []byte(newPass), RestoreOptions{StateDir: dir}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if res.CA.Roots[0].Fingerprint != trust.CertSHA256(st.ca.TrustBundle().Roots()[0]) {
		t.Error("the restored CA has another root")
	}
}
