package pki

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
	"github.com/drawbridge-proxy/drawbridge/pki/cert"
	"github.com/drawbridge-proxy/drawbridge/pki/layout"
	"github.com/drawbridge-proxy/drawbridge/pki/part"
	"github.com/drawbridge-proxy/drawbridge/pki/pkitest"
	"github.com/drawbridge-proxy/drawbridge/pki/trust"
)

// signerFor wraps the CA's current intermediate for pkitest, so a test can
// mint flawed leaves that still chain to the real root.
func (p *testPKI) signerFor() *pkitest.CA {
	// The CA state names the intermediate and the storage key of its key
	// (sealed; the storage opens it).
	ctx := context.Background()
	raw, err := p.storage.Load(ctx, layout.CAStateKey)
	if err != nil {
		panic(err)
	}
	var st struct {
		Intermediate struct {
			CertPEM []byte `json:"cert_pem"`
			Key     string `json:"key"`
		} `json:"intermediate"`
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		panic(err)
	}
	inter, err := trust.ParseCertPEM(st.Intermediate.CertPEM)
	if err != nil {
		panic(err)
	}
	keyPEM, err := p.storage.Load(ctx, st.Intermediate.Key)
	if err != nil {
		panic(err)
	}
	key, err := certmagic.PEMDecodePrivateKey(keyPEM)
	if err != nil {
		panic(err)
	}
	return pkitest.Wrap(inter, key, p.cfg.TrustDomain, inter)
}

func waitCount(t *testing.T, p *testPKI, reason string, want float64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := counterValue(t, p.reg, "drawbridge_pki_handshake_failures_total", reason)
		if got >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("drawbridge_pki_handshake_failures_total{reason=%q} = %v, want %v", reason, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMutualRefusalMatrix handshakes against a mutual server config with
// every kind of bad client certificate: each fails the handshake and is
// counted under its reason; a valid allowed identity gets through.
func TestMutualRefusalMatrix(t *testing.T) {
	p := newTestPKI(t, testConfig(t), nil)
	api := p.manage(t, "api", "api.drawbridge.internal")
	web := p.manage(t, "web")
	addr := p.serveMutual(t, api, web.String(), "spiffe://drawbridge.internal/ns/*")

	good, err := p.mgr.ClientConfig(cert.ClientOptions{Identity: web, ServerID: api})
	if err != nil {
		t.Fatal(err)
	}
	if err := drawtest.DialGreeting(addr, good); err != nil {
		t.Fatalf("valid client refused: %v", err)
	}

	ours := p.signerFor()
	other := pkitest.NewCA(t, p.cfg.TrustDomain)
	foreign := pkitest.Wrap(ours.Cert, ours.Key, "evil.internal", ours.Chain...)
	cases := []struct {
		name, reason string
		cert         *tls.Certificate
	}{
		{"no certificate", cert.ReasonNoCertificate, nil},
		{"other CA", cert.ReasonUnknownAuthority, ptr(other.Leaf(t, "web"))},
		{"expired", cert.ReasonExpired, ptr(ours.Expired(t, "web"))},
		{"not yet valid", cert.ReasonNotYetValid, ptr(ours.NotYetValid(t, "web"))},
		{"wrong EKU", cert.ReasonBadKeyUsage, ptr(ours.WrongEKU(t, "web"))},
		{"CA as leaf", cert.ReasonCAAsLeaf, ptr(ours.CAAsLeaf(t, "web"))},
		{"wrong identity", cert.ReasonIdentityNotAllowed, ptr(ours.Leaf(t, "db"))},
		{"no SPIFFE ID", cert.ReasonNoIdentity, ptr(ours.Issue(t, pkitest.LeafOptions{DNSNames: []string{"web.drawbridge.internal"}}))},
		{"outside trust domain", cert.ReasonNameConstraint, ptr(foreign.Leaf(t, "web"))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := counterValue(t, p.reg, "drawbridge_pki_handshake_failures_total", tc.reason)
			cli := &tls.Config{RootCAs: p.ca.TrustBundle().Pool(), ServerName: "api.drawbridge.internal", MinVersion: tls.VersionTLS13}
			if tc.cert != nil {
				// GetClientCertificate sends the certificate even when
				// the server's acceptable-CA list does not name its issuer
				// (Certificates would silently send none).
				cli.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return tc.cert, nil }
			}
			if err := drawtest.DialGreeting(addr, cli); err == nil {
				t.Fatal("handshake succeeded, want refusal")
			}
			waitCount(t, p, tc.reason, before+1)
		})
	}
	// The allow-list's wildcard admits a service under ns/.
	nsCli := &tls.Config{RootCAs: p.ca.TrustBundle().Pool(), ServerName: "api.drawbridge.internal", MinVersion: tls.VersionTLS13,
		Certificates: []tls.Certificate{ours.Leaf(t, "ns/batch")}}
	if err := drawtest.DialGreeting(addr, nsCli); err != nil {
		t.Errorf("ns/batch refused: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestServerModeAsksNoClientCertificate(t *testing.T) {
	p := newTestPKI(t, testConfig(t), nil)
	api := p.manage(t, "api", "api.drawbridge.internal")
	srv, err := p.mgr.ServerConfig(cert.ServerOptions{Identity: api, Profile: cert.Edge})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, p.mgr, srv)
	cli := &tls.Config{RootCAs: p.ca.TrustBundle().Pool(), ServerName: "api.drawbridge.internal"}
	if err := drawtest.DialGreeting(addr, cli); err != nil {
		t.Fatalf("server mode: %v", err)
	}
	// Edge speaks TLS 1.2 with Mozilla's suites only; no CBC.
	cbc := &tls.Config{RootCAs: p.ca.TrustBundle().Pool(), ServerName: "api.drawbridge.internal", MaxVersion: tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}
	if err := drawtest.DialGreeting(addr, cbc); err == nil {
		t.Error("edge accepted a CBC-SHA1 suite")
	}
	tls12 := &tls.Config{RootCAs: p.ca.TrustBundle().Pool(), ServerName: "api.drawbridge.internal", MaxVersion: tls.VersionTLS12}
	if err := drawtest.DialGreeting(addr, tls12); err != nil {
		t.Errorf("edge refused TLS 1.2 with a Mozilla suite: %v", err)
	}
	// Internal hops are TLS 1.3 only.
	internal, err := p.mgr.ServerConfig(cert.ServerOptions{Identity: api})
	if err != nil {
		t.Fatal(err)
	}
	if err := drawtest.DialGreeting(serveTLS(t, p.mgr, internal), tls12); err == nil {
		t.Error("internal profile accepted TLS 1.2")
	}
}

// TestClientVerifiesUpstream checks the upstream side: the wrong SPIFFE
// ID, another CA and a wrong DNS name are refused by the client config.
func TestClientVerifiesUpstream(t *testing.T) {
	p := newTestPKI(t, testConfig(t), nil)
	api := p.manage(t, "api", "api.drawbridge.internal")
	web := p.manage(t, "web")
	srv, err := p.mgr.ServerConfig(cert.ServerOptions{Identity: api, Mutual: true})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, p.mgr, srv)

	cases := []struct {
		name   string
		opts   cert.ClientOptions
		reason string
	}{
		{"by SPIFFE ID", cert.ClientOptions{Identity: web, ServerID: api}, ""},
		{"by DNS name", cert.ClientOptions{Identity: web, ServerName: "api.drawbridge.internal"}, ""},
		{"wrong SPIFFE ID", cert.ClientOptions{Identity: web, ServerID: p.id("db")}, cert.ReasonIdentityMismatch},
		{"wrong DNS name", cert.ClientOptions{Identity: web, ServerName: "db.drawbridge.internal"}, cert.ReasonNameMismatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cli, err := p.mgr.ClientConfig(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			before := counterValue(t, p.reg, "drawbridge_pki_handshake_failures_total", tc.reason)
			err = drawtest.DialGreeting(addr, cli)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("connected, want refusal")
			}
			waitCount(t, p, tc.reason, before+1)
		})
	}

	// An upstream with a certificate from another CA.
	other := pkitest.NewCA(t, p.cfg.TrustDomain)
	impostor := &tls.Config{Certificates: []tls.Certificate{other.Leaf(t, "api", "api.drawbridge.internal")}, MinVersion: tls.VersionTLS13}
	iaddr := serveTLS(t, p.mgr, impostor)
	cli, _ := p.mgr.ClientConfig(cert.ClientOptions{Identity: web, ServerID: api})
	if err := drawtest.DialGreeting(iaddr, cli); err == nil {
		t.Error("impostor upstream accepted")
	}
	waitCount(t, p, cert.ReasonUnknownAuthority, 1)
	// With its own roots (an upstream outside the trust domain, verified by name).
	outside, _ := p.mgr.ClientConfig(cert.ClientOptions{Identity: web, ServerName: "api.drawbridge.internal", Roots: other.Pool()})
	if err := drawtest.DialGreeting(iaddr, outside); err != nil {
		t.Errorf("upstream verified against its own CA file refused: %v", err)
	}
	if _, err := p.mgr.ClientConfig(cert.ClientOptions{Identity: web}); err == nil {
		t.Error("client config without ServerID or ServerName accepted")
	}
}

// TestRefusalFloodLogsBounded: a client that retries a refused handshake in
// a loop is counted every time but logged only up to the limiter's budget.
func TestRefusalFloodLogsBounded(t *testing.T) {
	var logs drawtest.Buffer
	p := newTestPKIDeps(t, testConfig(t), part.Deps{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	api := p.manage(t, "api", "api.drawbridge.internal")
	addr := p.serveMutual(t, api, p.id("web").String())
	stranger := p.signerFor().Leaf(t, "db") // ours, but not allowed here
	cli := &tls.Config{RootCAs: p.ca.TrustBundle().Pool(), ServerName: "api.drawbridge.internal", MinVersion: tls.VersionTLS13,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &stranger, nil }}
	const attempts = 40
	for range attempts {
		if err := drawtest.DialGreeting(addr, cli); err == nil {
			t.Fatal("handshake with an identity the server does not allow succeeded")
		}
	}
	waitCount(t, p, cert.ReasonIdentityNotAllowed, attempts)
	if n := strings.Count(logs.String(), `"msg":"TLS client refused"`); n == 0 || n > 10 {
		t.Errorf("%d refusal lines for %d refused handshakes, want between 1 and 10 (the limiter's budget)", n, attempts)
	}
}
