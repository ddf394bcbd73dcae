package pki

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	pebbleca "github.com/letsencrypt/pebble/v2/ca"
	pebbledb "github.com/letsencrypt/pebble/v2/db"
	pebbleva "github.com/letsencrypt/pebble/v2/va"
	pebblewfe "github.com/letsencrypt/pebble/v2/wfe"

	"github.com/drawbridge-proxy/drawbridge/pki/cert"
	"github.com/drawbridge-proxy/drawbridge/pki/part"
	"github.com/drawbridge-proxy/drawbridge/pki/pkitest"
	"github.com/drawbridge-proxy/drawbridge/pki/source"
)

// startPebble runs Pebble (Let's Encrypt's test ACME server) in process on
// 127.0.0.1, validating tls-alpn-01 challenges on tlsPort. It returns the
// directory URL, a file with the roots to trust its API, and Pebble's
// issuing root.
func startPebble(t *testing.T, tlsPort int) (dirURL, apiRootsFile string, issuingRoot []byte) {
	t.Helper()
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	t.Setenv("PEBBLE_AUTHZREUSE", "0")
	logger := log.New(io.Discard, "", 0)
	db := pebbledb.NewMemoryStore()
	ca := pebbleca.New(logger, db, "", "ecdsa", 0, 1, map[string]pebbleca.Profile{"default": {Description: "default"}})
	va := pebbleva.New(logger, 0, tlsPort, false, "", db)
	wfe := pebblewfe.New(logger, db, va, ca, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)

	apiCA := pkitest.NewCA(t, "pebble.test")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: wfe.Handler(), ReadHeaderTimeout: 5 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{apiCA.Leaf(t, "", "localhost")}}, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })

	apiRootsFile = filepath.Join(t.TempDir(), "pebble-api.pem")
	if err := os.WriteFile(apiRootsFile, apiCA.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	root := ca.GetRootCert(0).Cert
	return "https://localhost:" + port + pebblewfe.DirectoryPath, apiRootsFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw})
}

// TestACMEWithPebble gets a certificate for a name from a local Pebble
// through certmagic: the edge listener answers the tls-alpn-01 challenge
// itself, then serves the issued certificate; its key is sealed.
func TestACMEWithPebble(t *testing.T) {
	p := newTestPKI(t, testConfig(t), nil)
	edgeLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, portStr, _ := net.SplitHostPort(edgeLn.Addr().String())
	port, _ := strconv.Atoi(portStr)
	dirURL, rootsFile, issuingRoot := startPebble(t, port)

	acfg := source.ACMEConfig{Names: []string{"localhost"}, CA: dirURL, TrustedRootsFile: rootsFile, TLSALPNPort: port, HTTPPort: -1, AgreeToTerms: true, Email: "ops@example.test"}
	if err := acfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a, err := source.NewACME(acfg, p.storage, time.Minute, part.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	srv, err := p.mgr.ServerConfig(cert.ServerOptions{Certificates: a, Profile: cert.Edge, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	ln := p.mgr.Listener(edgeLn, srv, cert.ListenerOptions{})
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "edge") }), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := a.Manage(ctx); err != nil {
		t.Fatalf("obtaining from Pebble: %v", err)
	}

	// A client trusting Pebble's root gets the edge over HTTPS.
	pool := pkitest.NewCA(t, "x").Pool()
	if !pool.AppendCertsFromPEM(issuingRoot) {
		t.Fatal("bad Pebble root")
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}}}
	defer c.CloseIdleConnections()
	res, err := c.Get("https://" + edgeLn.Addr().String() + "/")
	if err != nil {
		t.Fatalf("HTTPS to the edge with the ACME certificate: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(body) != "edge" {
		t.Errorf("got %q", body)
	}
	if issuer := res.TLS.PeerCertificates[0].Issuer.CommonName; issuer == "" {
		t.Error("no issuer on the served certificate")
	}

	// certmagic stored the certificate key and the ACME account key: both sealed.
	keys, err := p.storage.List(ctx, "certificates", true)
	if err != nil {
		t.Fatal(err)
	}
	sealed := 0
	for _, k := range keys {
		if filepath.Ext(k) != ".key" {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(p.cfg.StateDir, filepath.FromSlash(k)))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(raw, []byte("drawbridge-sealed-v1\n")) { // the sealed format's magic
			t.Errorf("%s is not sealed", k)
		}
		sealed++
	}
	if sealed == 0 {
		t.Error("found no certificate key in storage")
	}
}
