package pki

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/pki/cert"
	"github.com/drawbridge-proxy/drawbridge/pki/part"
	"github.com/drawbridge-proxy/drawbridge/pki/pkitest"
	"github.com/drawbridge-proxy/drawbridge/pki/source"
)

func writePair(t *testing.T, certFile, keyFile string, c tls.Certificate) {
	t.Helper()
	var certPEM []byte
	for _, der := range c.Certificate {
		certPEM = append(certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestFileSourceHotReload serves a certificate from files; replacing the
// files (in place, then by rename) changes what new handshakes get, an
// open connection stays up, and a bad pair is refused with the old one
// kept.
func TestFileSourceHotReload(t *testing.T) {
	p := newTestPKI(t, testConfig(t), nil)
	ca := pkitest.NewCA(t, "drawbridge.internal")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "edge.crt"), filepath.Join(dir, "edge.key")
	first := ca.Leaf(t, "", "edge.example.test")
	writePair(t, certFile, keyFile, first)

	fcfg := source.FileSourceConfig{CertFile: certFile, KeyFile: keyFile}
	fcfg.Defaults()
	if err := fcfg.Validate(); err != nil {
		t.Fatal(err)
	}
	src, err := source.NewFileSource(fcfg, part.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := p.mgr.ServerConfig(cert.ServerOptions{Certificates: src, Profile: cert.Edge})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, p.mgr, srv)
	cli := &tls.Config{RootCAs: ca.Pool(), ServerName: "edge.example.test"}
	serial := func() string {
		t.Helper()
		c, err := tls.Dial("tcp", addr, cli)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	if got := serial(); got != first.Leaf.SerialNumber.String() {
		t.Fatalf("serving %s, want the first certificate", got)
	}
	open, err := tls.Dial("tcp", addr, cli)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()

	// In place.
	second := ca.Leaf(t, "", "edge.example.test")
	writePair(t, certFile, keyFile, second)
	if changed, err := src.Reload(); err != nil || !changed {
		t.Fatalf("reload after an in-place write: changed %v, %v", changed, err)
	}
	if got := serial(); got != second.Leaf.SerialNumber.String() {
		t.Errorf("after in-place write serving %s, want the second certificate", got)
	}
	// By rename.
	third := ca.Leaf(t, "", "edge.example.test")
	tmpCert, tmpKey := filepath.Join(dir, "new.crt"), filepath.Join(dir, "new.key")
	writePair(t, tmpCert, tmpKey, third)
	if err := os.Rename(tmpCert, certFile); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmpKey, keyFile); err != nil {
		t.Fatal(err)
	}
	if changed, err := src.Reload(); err != nil || !changed {
		t.Fatalf("reload after a rename: changed %v, %v", changed, err)
	}
	if got := serial(); got != third.Leaf.SerialNumber.String() {
		t.Errorf("after rename serving %s, want the third certificate", got)
	}
	// A key that does not match is refused; the third stays.
	writePair(t, certFile, keyFile, third)
	other := ca.Leaf(t, "", "edge.example.test")
	keyDER, _ := x509.MarshalPKCS8PrivateKey(other.PrivateKey)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
	if _, err := src.Reload(); err == nil {
		t.Error("mismatched pair accepted")
	}
	if got := serial(); got != third.Leaf.SerialNumber.String() {
		t.Errorf("after a bad pair serving %s, want the third certificate still", got)
	}
	// The connection opened before the changes still works.
	_ = open.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 3)
	if _, err := open.Read(buf); err != nil || string(buf) != "ok\n" {
		t.Errorf("open connection broke across reloads: %q, %v", buf, err)
	}
}
