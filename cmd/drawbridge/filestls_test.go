package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/cmd/drawbridge/internal/config"
	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
	"github.com/drawbridge-proxy/drawbridge/pki/pkitest"
)

// writePair writes c's chain and key as PEM files in dir.
func writePair(t *testing.T, dir, name string, c tls.Certificate) (certFile, keyFile string) {
	t.Helper()
	var chain []byte
	for _, der := range c.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, chain, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestOwnCertificateFilesWithoutPKI: a file without a pki section serves
// TLS from the operator's certificate files, and mutual TLS against the
// operator's client_ca_file: a client of that CA is admitted, one without
// a certificate or from another CA refused at the handshake.
func TestOwnCertificateFilesWithoutPKI(t *testing.T) {
	dir := t.TempDir()
	serverCA, clientCA, otherCA := pkitest.NewCA(t, "edge.test"), pkitest.NewCA(t, "users.test"), pkitest.NewCA(t, "other.test")
	crt, key := writePair(t, dir, "server", serverCA.Leaf(t, "", "localhost"))
	clientCAFile := filepath.Join(dir, "clients.pem")
	if err := os.WriteFile(clientCAFile, clientCA.PEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	serverCAFile := filepath.Join(dir, "server-ca.pem")
	if err := os.WriteFile(serverCAFile, serverCA.PEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	be := newOKBackend(t)
	mutualAddr := drawtest.FreeAddr(t)
	lg := startLive(t, fmt.Sprintf(`
admin: {address: "{{ADMIN}}"}
listeners:
  edge:
    address: "{{EDGE}}"
    tls: {mode: server, certificate: files, cert_file: %q, key_file: %q}
    routes: [{upstream: app}]
  partners:
    address: %q
    tls: {mode: mutual, certificate: files, cert_file: %q, key_file: %q, client_ca_file: %q, allow: ["spiffe://users.test/alice"]}
    routes: [{upstream: app}]
upstreams:
  app: {targets: [%q]}
`, crt, key, mutualAddr, crt, key, clientCAFile, be.Listener.Addr().String()))

	edge := lg.gw.proxy.Addr("edge").String()
	if code, body := getTLS(t, caClient(t, serverCAFile, edge), "https://localhost/"); code != 200 || body != "ok" {
		t.Errorf("server TLS from files: %d %q", code, body)
	}
	mutual := lg.gw.proxy.Addr("partners").String()
	if code, _ := getTLS(t, caClient(t, serverCAFile, mutual, clientCA.Leaf(t, "alice")), "https://localhost/"); code != 200 {
		t.Errorf("mutual TLS, a client of client_ca_file: %d, want 200", code)
	}
	if code, _ := getTLS(t, caClient(t, serverCAFile, mutual, clientCA.Leaf(t, "mallory")), "https://localhost/"); code != http.StatusForbidden {
		t.Errorf("mutual TLS, a client of client_ca_file not in allow: %d, want 403", code)
	}
	for name, certs := range map[string][]tls.Certificate{
		"no client certificate":       nil,
		"a certificate of another CA": {otherCA.Leaf(t, "alice")},
	} {
		if code, err := tryTLS(caClient(t, serverCAFile, mutual, certs...), "https://localhost/"); err == nil {
			t.Errorf("mutual TLS with %s: %d, want a refused handshake", name, code)
		}
	}
}

func getTLS(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func tryTLS(c *http.Client, url string) (int, error) {
	c.Timeout = 5 * time.Second
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestOwnCAUseNeedsPKI: without a pki section, what needs drawbridge's own
// CA is refused, each with its key path; certificate files are not.
func TestOwnCAUseNeedsPKI(t *testing.T) {
	_, err := config.Parse("nopki.yaml", []byte(`
listeners:
  a: {address: 127.0.0.1:18441, tls: {mode: server}, routes: [{upstream: app}]}
  b: {address: 127.0.0.1:18442, tls: {mode: mutual, certificate: files, cert_file: /c, key_file: /k}, routes: [{upstream: app}]}
  c: {address: 127.0.0.1:18443, tls: {mode: server, certificate: files, cert_file: /c, key_file: /k, client_ca_file: /ca}, routes: [{upstream: app}]}
  d: {address: 127.0.0.1:18444, tls: {mode: mutual, certificate: files, cert_file: /c, key_file: /k, client_ca_file: /ca}, routes: [{upstream: app}]}
upstreams:
  app: {targets: ["127.0.0.1:1"]}
`))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		"listeners.a.tls.certificate: internal needs a pki section",
		"listeners.b.tls.client_ca_file: mode mutual without a pki section needs client_ca_file",
		"listeners.c.tls.client_ca_file: only for mode: mutual",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("problems lack %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "listeners.d") {
		t.Errorf("listener d (files and client_ca_file) needs no pki section:\n%v", err)
	}
}
