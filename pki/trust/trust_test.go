package trust_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"testing"

	"github.com/drawbridge-proxy/drawbridge/pki/pkitest"
	"github.com/drawbridge-proxy/drawbridge/pki/trust"
)

// The bundle keeps the active root first in every form, and its PEM is
// what a verifier outside drawbridge reads back.
func TestBundleKeepsOrderInEveryForm(t *testing.T) {
	active, next := pkitest.NewCA(t, "drawbridge.internal").Cert, pkitest.NewCA(t, "drawbridge.internal").Cert
	b := trust.NewBundle([]*x509.Certificate{active, next})

	roots := b.Roots()
	if len(roots) != 2 || !roots[0].Equal(active) || !roots[1].Equal(next) {
		t.Fatalf("Roots: got %d roots, want active then next", len(roots))
	}
	roots[0] = next // a caller's copy must not change the bundle
	if !b.Roots()[0].Equal(active) {
		t.Error("changing the slice Roots returned changed the bundle")
	}
	parsed, err := trust.ParseCertsPEM(b.PEM())
	if err != nil || len(parsed) != 2 || !parsed[0].Equal(active) || !parsed[1].Equal(next) {
		t.Fatalf("PEM round trip: got %d certificates, %v; want active then next", len(parsed), err)
	}
	if !b.Contains(next) || b.Contains(pkitest.NewCA(t, "other").Cert) {
		t.Error("Contains: want true for a root, false for a stranger")
	}
	if b.Equal(trust.NewBundle([]*x509.Certificate{next, active})) {
		t.Error("Equal: bundles with the roots in another order compare equal")
	}
	if !b.Equal(trust.NewBundle([]*x509.Certificate{active, next})) {
		t.Error("Equal: bundles with the same roots compare unequal")
	}
}

// The pool verifies a leaf signed by any root of the bundle.
func TestBundlePoolVerifiesEveryRoot(t *testing.T) {
	a, b := pkitest.NewCA(t, "drawbridge.internal"), pkitest.NewCA(t, "drawbridge.internal")
	bundle := trust.NewBundle([]*x509.Certificate{a.Cert, b.Cert})
	for name, ca := range map[string]*pkitest.CA{"active": a, "next": b} {
		leaf, err := x509.ParseCertificate(ca.Leaf(t, "api", "localhost").Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: bundle.Pool(), DNSName: "localhost"}); err != nil {
			t.Errorf("a leaf of the %s root does not verify against the pool: %v", name, err)
		}
	}
}

func TestParsePEM(t *testing.T) {
	cert := pkitest.NewCA(t, "drawbridge.internal").Cert
	key := generatedKeyPEM(t)
	tests := []struct {
		name    string
		in      []byte
		want    int // certificates ParseCertsPEM finds; 0: an error
		wantOne bool
	}{
		{"one certificate", trust.PEMCert(cert), 1, true},
		{"a key block is skipped", append(bytes.Clone(key), trust.PEMCert(cert)...), 1, false},
		{"a chain", trust.ChainPEM([]*x509.Certificate{cert, cert}), 2, true},
		{"no certificate", key, 0, false},
		{"not PEM", []byte("hello"), 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := trust.ParseCertsPEM(tc.in)
			if tc.want == 0 {
				if err == nil {
					t.Fatalf("ParseCertsPEM: got %d certificates, want an error", len(got))
				}
			} else if err != nil || len(got) != tc.want {
				t.Fatalf("ParseCertsPEM: got %d, %v; want %d", len(got), err, tc.want)
			}
			one, err := trust.ParseCertPEM(tc.in)
			if tc.wantOne != (err == nil) {
				t.Fatalf("ParseCertPEM (first block only): got %v, %v; want success %v", one, err, tc.wantOne)
			}
			if tc.wantOne && !one.Equal(cert) {
				t.Error("ParseCertPEM returned another certificate")
			}
		})
	}
}

// CertSHA256 is what `openssl x509 -fingerprint -sha256` prints, without
// colons and in lower case.
func TestCertSHA256(t *testing.T) {
	cert := pkitest.NewCA(t, "drawbridge.internal").Cert
	sum := sha256.Sum256(cert.Raw)
	if got, want := trust.CertSHA256(cert), hex.EncodeToString(sum[:]); got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if got := trust.CertSHA256(cert); len(got) != 64 || got != string(bytes.ToLower([]byte(got))) {
		t.Errorf("got %q, want 64 lower-case hex digits", got)
	}
}

// generatedKeyPEM is a key block made for the test, so no key is ever in
// the repository.
func generatedKeyPEM(t *testing.T) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}
