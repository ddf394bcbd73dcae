package tlswire_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/drawbridge-proxy/drawbridge/cmd/drawbridge/internal/config"
	"github.com/drawbridge-proxy/drawbridge/cmd/drawbridge/internal/tlswire"
	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
	"github.com/drawbridge-proxy/drawbridge/pki/cert"
	"github.com/drawbridge-proxy/drawbridge/pki/identity"
	"github.com/drawbridge-proxy/drawbridge/pki/part"
	"github.com/drawbridge-proxy/drawbridge/pki/pkitest"
	"github.com/drawbridge-proxy/drawbridge/pki/store"
	"github.com/drawbridge-proxy/drawbridge/pki/trust"
	"github.com/drawbridge-proxy/drawbridge/proxy"
)

const td = "test.internal"

// testAuthority is a cert.Authority over a pkitest CA, so the tests can
// sign flawed certificates (expired, wrong key usage...) under the very
// root the gateway trusts.
type testAuthority struct {
	ca     *pkitest.CA
	bundle *trust.Bundle
}

func newTestAuthority(ca *pkitest.CA) *testAuthority {
	return &testAuthority{ca: ca, bundle: trust.NewBundle([]*x509.Certificate{ca.Cert})}
}

func (a *testAuthority) IssuerKey() string                              { return "pkitest" }
func (a *testAuthority) TrustBundle() *trust.Bundle                     { return a.bundle }
func (a *testAuthority) TrustDomain() string                            { return a.ca.TrustDomain }
func (a *testAuthority) Register(identity.ID, []string)                 {}
func (a *testAuthority) PreCheck(context.Context, []string, bool) error { return nil }

func (a *testAuthority) Issue(_ context.Context, csr *x509.CertificateRequest) (*certmagic.IssuedCertificate, error) {
	sn, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: sn, URIs: csr.URIs, DNSNames: []string{"localhost"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.ca.Cert, csr.PublicKey, a.ca.Key)
	if err != nil {
		return nil, err
	}
	return &certmagic.IssuedCertificate{Certificate: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// matrixGateway is a composed data plane: a cert.Manager over the test
// authority, the tlswire provider, and a proxy with an http and a tcp
// listener, both mutual.
type matrixGateway struct {
	ca        *pkitest.CA
	reg       *prometheus.Registry
	http, tcp string
}

func startMatrixGateway(t *testing.T) *matrixGateway {
	t.Helper()
	ca := pkitest.NewCA(t, td)
	echoIdentity := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.Header.Get(proxy.HeaderIdentity))
	}))
	t.Cleanup(echoIdentity.Close)
	echo := drawtest.Echo(t)
	dir := t.TempDir()
	yaml := fmt.Sprintf(`
pki:
  state_dir: %q
  passphrase_file: /run/secrets/unused
  trust_domain: %s
listeners:
  web:
    address: %[5]q
    tls: {mode: mutual, names: [gw, localhost], allow: ["spiffe://%[2]s/clients/*"]}
    routes:
      - {match: {path_prefix: /admin}, allow: ["spiffe://%[2]s/clients/admin"], upstream: app}
      - {upstream: app}
  db:
    address: %[6]q
    protocol: tcp
    tls: {mode: mutual, names: [gw-db, localhost], allow: ["spiffe://%[2]s/clients/*"]}
    routes: [{upstream: echo}]
upstreams:
  app: {targets: [%[3]q]}
  echo: {protocol: tcp, targets: [%[4]q]}
`, filepath.Join(dir, "state"), td, strings.TrimPrefix(echoIdentity.URL, "http://"), echo, drawtest.FreeAddr(t), drawtest.FreeAddr(t))
	f, err := config.Parse("matrix.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := store.OpenStorage(ctx, f.PKI.StateDir, []byte("a passphrase long enough"))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m, err := cert.NewManager(f.PKI.Config.Manager(), newTestAuthority(ca), st, part.Deps{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	prov, err := tlswire.New(f, m, tlswire.Deps{Storage: st})
	if err != nil {
		t.Fatal(err)
	}
	if err := prov.Manage(ctx); err != nil {
		t.Fatal(err)
	}
	srv, err := proxy.New(f.Config, proxy.Deps{TLS: prov, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Bind(); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Run(runCtx) }()
	t.Cleanup(func() { cancel(); <-done })
	return &matrixGateway{ca: ca, reg: reg, http: srv.Addr("web").String(), tcp: srv.Addr("db").String()}
}

func (g *matrixGateway) clientTLS(certs []tls.Certificate) *tls.Config {
	return &tls.Config{RootCAs: g.ca.Pool(), ServerName: "localhost", Certificates: certs}
}

// get asks path on the http listener with certs and returns the status
// and body, or the error (a refused handshake).
func (g *matrixGateway) get(certs []tls.Certificate, path string, header http.Header) (int, string, error) {
	tr := &http.Transport{TLSClientConfig: g.clientTLS(certs), ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodGet, "https://"+g.http+path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.ProtoMajor != 2 {
		return 0, "", fmt.Errorf("HTTP/%d, want HTTP/2 on a TLS listener", resp.ProtoMajor)
	}
	return resp.StatusCode, string(b), nil
}

// echo sends a line through the tcp listener and returns what came back.
func (g *matrixGateway) echo(certs []tls.Certificate) (string, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", g.tcp, g.clientTLS(certs))
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "ping"); err != nil {
		return "", err
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil {
		return "", err
	}
	return string(buf), nil
}

// failures returns drawbridge_pki_handshake_failures_total by reason.
func (g *matrixGateway) failures(t *testing.T) map[string]float64 {
	t.Helper()
	mfs, err := g.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "drawbridge_pki_handshake_failures_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			out[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	return out
}

// TestCertificateMatrix presents every kind of client certificate to a
// mutual http listener and a mutual tcp listener of a composed data plane.
func TestCertificateMatrix(t *testing.T) {
	g := startMatrixGateway(t)
	other := pkitest.NewCA(t, td)
	cases := []struct {
		name   string
		certs  []tls.Certificate
		reason string // the handshake refusal counted; "" when the handshake succeeds
		// on the http listener: the status of / and /admin (0: refused handshake)
		root, admin int
		// on the tcp listener: whether the relay works
		relays bool
	}{
		{name: "valid", certs: []tls.Certificate{g.ca.Leaf(t, "clients/web")}, root: 200, admin: 403, relays: true},
		{name: "valid for the admin route", certs: []tls.Certificate{g.ca.Leaf(t, "clients/admin")}, root: 200, admin: 200, relays: true},
		{name: "wrong identity", certs: []tls.Certificate{g.ca.Leaf(t, "intruder")}, reason: cert.ReasonIdentityNotAllowed, root: 403, admin: 403},
		{name: "no certificate", reason: cert.ReasonNoCertificate},
		{name: "other CA", certs: []tls.Certificate{other.Leaf(t, "clients/web")}, reason: cert.ReasonUnknownAuthority},
		{name: "expired", certs: []tls.Certificate{g.ca.Expired(t, "clients/web")}, reason: cert.ReasonExpired},
		{name: "not yet valid", certs: []tls.Certificate{g.ca.NotYetValid(t, "clients/web")}, reason: cert.ReasonNotYetValid},
		{name: "wrong EKU", certs: []tls.Certificate{g.ca.WrongEKU(t, "clients/web")}, reason: cert.ReasonBadKeyUsage},
		{name: "CA as leaf", certs: []tls.Certificate{g.ca.CAAsLeaf(t, "clients/web")}, reason: cert.ReasonCAAsLeaf},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := g.failures(t)
			for path, want := range map[string]int{"/": tc.root, "/admin/x": tc.admin} {
				status, body, err := g.get(tc.certs, path, http.Header{proxy.HeaderIdentity: {"spiffe://" + td + "/spoofed"}})
				switch {
				case want == 0 && err == nil:
					t.Errorf("http %s: got %d, want a refused handshake", path, status)
				case want != 0 && err != nil:
					t.Errorf("http %s: %v, want %d", path, err, want)
				case want != 0 && status != want:
					t.Errorf("http %s: got %d, want %d", path, status, want)
				case want == 200:
					id, _ := identity.FromCertificate(tc.certs[0].Leaf)
					if body != id.String() {
						t.Errorf("http %s: the upstream saw identity %q, want %q (a client-sent header must never pass)", path, body, id)
					}
				}
			}
			got, err := g.echo(tc.certs)
			if tc.relays && (err != nil || got != "ping") {
				t.Errorf("tcp: got %q, %v; want the relay to work", got, err)
			}
			if !tc.relays && err == nil {
				t.Errorf("tcp: relayed %q; want a closed connection", got)
			}
			if tc.reason == "" {
				return
			}
			// The http listener refuses at the handshake too, except for a
			// valid certificate with the wrong identity (403): count those
			// from the tcp listener only.
			want := 3.0
			if tc.reason == cert.ReasonIdentityNotAllowed {
				want = 1
			}
			// The server counts after the client has seen the alert.
			deadline := time.Now().Add(2 * time.Second)
			for g.failures(t)[tc.reason]-before[tc.reason] < want && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if got := g.failures(t)[tc.reason] - before[tc.reason]; got != want {
				t.Errorf("handshake failures with reason %s grew by %v, want %v (all: %v)", tc.reason, got, want, g.failures(t))
			}
		})
	}
}
