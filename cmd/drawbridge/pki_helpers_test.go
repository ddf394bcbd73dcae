package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// caClient is an HTTPS client that trusts the PEM bundle in caFile and
// dials every host at addr, so URLs can name the certificate's host
// (https://localhost:PORT) whatever address the listener has.
func caClient(t *testing.T, caFile, addr string, certs ...tls.Certificate) *http.Client {
	t.Helper()
	pemBytes, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatalf("%s holds no certificate", caFile)
	}
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool, Certificates: certs},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, addr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// waitFile waits until path exists.
func waitFile(t *testing.T, path string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear within %v", path, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testPassphrase seals the state dirs of these tests.
const testPassphrase = "a test passphrase, long enough"

// pkiSection is a pki section with a fresh state dir and passphrase file;
// extra lines (indented two spaces) are added to it.
func pkiSection(t testing.TB, extra string) string {
	t.Helper()
	dir := t.TempDir()
	pass := filepath.Join(dir, "passphrase")
	if err := os.WriteFile(pass, []byte(testPassphrase+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("pki:\n  state_dir: %q\n  passphrase_file: %q\n%s", filepath.Join(dir, "state"), pass, extra)
}

// caConfig writes a configuration with only a pki section, a CA of its
// own: all the commands that only use the CA need.
func caConfig(t *testing.T) string {
	t.Helper()
	return writeFile(t, "pki.yaml", pkiSection(t, ""))
}
