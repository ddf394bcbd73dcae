package pki

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
	"github.com/drawbridge-proxy/drawbridge/pki/cert"
	"github.com/drawbridge-proxy/drawbridge/pki/enroll"
	"github.com/drawbridge-proxy/drawbridge/pki/identity"
	"github.com/drawbridge-proxy/drawbridge/pki/part"
	"github.com/drawbridge-proxy/drawbridge/pki/pkitest"
	"github.com/drawbridge-proxy/drawbridge/pki/store"
)

const (
	tokenAPI     = "tok-api-0123456789abcdef0123456789abcdef"
	tokenExpired = "tok-old-0123456789abcdef0123456789abcdef"
)

type enrollFixture struct {
	ca      *testPKI
	url     string
	caFile  string
	dir     string
	logs    *drawtest.Buffer
	handler *enroll.Handler
	// away makes the endpoint drop every connection without an answer, as
	// a CA that is down; requests counts what reached it.
	away     atomic.Bool
	requests atomic.Int64
}

// newEnrollFixture runs a CA whose enrollment endpoint is served over TLS
// (client certificate optional) on 127.0.0.1, with two tokens: one for
// sidecar-api, one expired.
func newEnrollFixture(t *testing.T) *enrollFixture {
	t.Helper()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg := testConfig(t)
	cfg.EnrollServer.Tokens = []enroll.Token{
		{Identity: "spiffe://drawbridge.internal/sidecar-api", TokenFile: write("tok-api", tokenAPI+"\n"), DNSNames: []string{"api.drawbridge.internal"}},
		{Identity: "spiffe://drawbridge.internal/sidecar-old", TokenFile: write("tok-old", tokenExpired), Expires: time.Now().Add(-time.Hour)},
	}
	logs := &drawtest.Buffer{}
	p := newTestPKI(t, cfg, nil)
	gw := p.manage(t, "gateway", "localhost")
	h, err := enroll.NewHandler(p.ca, cfg.EnrollServer, part.Deps{Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), Registerer: p.reg})
	if err != nil {
		t.Fatal(err)
	}
	srvCfg, err := p.mgr.ServerConfig(cert.ServerOptions{Identity: gw, ClientCertOptional: true})
	if err != nil {
		t.Fatal(err)
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(inner.Addr().String())
	f := &enrollFixture{
		ca: p, dir: dir, logs: logs, handler: h,
		url:    "https://localhost:" + port + enroll.Path,
		caFile: write("ca.pem", string(p.ca.TrustBundle().PEM())),
	}
	mux := http.NewServeMux()
	mux.HandleFunc(enroll.Path, func(w http.ResponseWriter, r *http.Request) {
		f.requests.Add(1)
		if f.away.Load() {
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				_ = c.Close()
			}
			return
		}
		h.ServeHTTP(w, r)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(p.mgr.Listener(inner, srvCfg, cert.ListenerOptions{})) }()
	t.Cleanup(func() { _ = srv.Close() })
	return f
}

// sidecar makes an instance without the CA key, enrolling with tokenFile.
func (f *enrollFixture) sidecar(t *testing.T, tokenFile string) (*cert.Manager, *enroll.Client) {
	t.Helper()
	return f.sidecarWith(t, tokenFile, part.Deps{})
}

// sidecarWith is sidecar with deps (a clock, a registry).
func (f *enrollFixture) sidecarWith(t *testing.T, tokenFile string, deps part.Deps) (*cert.Manager, *enroll.Client) {
	t.Helper()
	cfg := testConfig(t)
	ecfg := enroll.ClientConfig{URL: f.url, TokenFile: tokenFile, CAFile: f.caFile}
	ecfg.Defaults()
	if err := ecfg.Validate(); err != nil {
		t.Fatal(err)
	}
	st, err := store.OpenStorageKDF(context.Background(), cfg.StateDir, []byte(testPassphrase), testKDF)
	if err != nil {
		t.Fatal(err)
	}
	ei, err := enroll.NewClient(context.Background(), ecfg, st, deps)
	if err != nil {
		t.Fatal(err)
	}
	m, err := cert.NewManager(cfg.Manager(), ei, st, deps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m, ei
}

func (f *enrollFixture) tokenFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEnrollWithTokenThenRenewWithCertificate(t *testing.T) {
	f := newEnrollFixture(t)
	m, _ := f.sidecar(t, f.tokenFile(t, tokenAPI))
	id := identity.MustNew("drawbridge.internal", "sidecar-api")
	ctx := context.Background()
	if err := m.Manage(ctx, id, []string{"api.drawbridge.internal"}); err != nil {
		t.Fatalf("enrolling with a token: %v", err)
	}
	first, err := m.Certificate(id)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := identity.FromCertificate(first.Leaf); got != id {
		t.Errorf("enrolled certificate is for %v, want %v", got, id)
	}
	if err := m.Renew(ctx); err != nil {
		t.Fatalf("renewing with the current certificate: %v", err)
	}
	second, _ := m.Certificate(id)
	if second.Leaf.SerialNumber.Cmp(first.Leaf.SerialNumber) == 0 {
		t.Error("renewal returned the same certificate")
	}
	if n := counterValue(t, f.ca.reg, "drawbridge_pki_enrollments_total", "token", "issued"); n != 1 {
		t.Errorf("token enrollments: %v, want 1", n)
	}
	if n := counterValue(t, f.ca.reg, "drawbridge_pki_enrollments_total", "certificate", "issued"); n != 1 {
		t.Errorf("certificate renewals: %v, want 1", n)
	}

	// The sidecar's certificate works on an mTLS hop to the gateway.
	api := f.ca.manage(t, "api")
	srv, _ := f.ca.mgr.ServerConfig(cert.ServerOptions{Identity: api, Mutual: true})
	cli, _ := m.ClientConfig(cert.ClientOptions{Identity: id, ServerID: api})
	if err := drawtest.DialGreeting(serveTLS(t, f.ca.mgr, srv), cli); err != nil {
		t.Errorf("sidecar to gateway over mTLS: %v", err)
	}
	if strings.Contains(f.logs.String(), tokenAPI) {
		t.Error("the token appears in the logs")
	}
}

func TestEnrollRefusals(t *testing.T) {
	f := newEnrollFixture(t)
	ctx := context.Background()
	cases := []struct {
		name, token, id string
	}{
		{"wrong token", "tok-bad-0123456789abcdef0123456789abcdef", "sidecar-api"},
		{"expired token", tokenExpired, "sidecar-old"},
		{"token for another identity", tokenAPI, "sidecar-db"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := f.sidecar(t, f.tokenFile(t, tc.token))
			err := m.Manage(ctx, identity.MustNew("drawbridge.internal", tc.id), nil)
			if err == nil || !strings.Contains(err.Error(), "403") {
				t.Fatalf("got %v, want a 403 refusal", err)
			}
		})
	}
	t.Run("DNS name not allowed for the token", func(t *testing.T) {
		m, _ := f.sidecar(t, f.tokenFile(t, tokenAPI))
		err := m.Manage(ctx, identity.MustNew("drawbridge.internal", "sidecar-api"), []string{"db.drawbridge.internal"})
		if err == nil || !strings.Contains(err.Error(), "403") {
			t.Fatalf("got %v, want a 403 refusal", err)
		}
	})
	t.Run("no token, no certificate", func(t *testing.T) {
		res, err := postEnroll(t, f, "", "sidecar-api")
		if err != nil {
			t.Fatal(err)
		}
		if res != http.StatusUnauthorized {
			t.Errorf("got %d, want 401", res)
		}
	})
	t.Run("renewal for another identity", func(t *testing.T) {
		m, ei := f.sidecar(t, f.tokenFile(t, tokenAPI))
		api := identity.MustNew("drawbridge.internal", "sidecar-api")
		if err := m.Manage(ctx, api, nil); err != nil {
			t.Fatal(err)
		}
		// Present sidecar-api's certificate while asking for sidecar-db.
		cert, _ := m.Certificate(api)
		ei.SetCertificateSource(func(identity.ID) (*tls.Certificate, error) { return cert, nil })
		err := m.Manage(ctx, identity.MustNew("drawbridge.internal", "sidecar-db"), nil)
		if err == nil || !strings.Contains(err.Error(), "403") {
			t.Fatalf("got %v, want a 403 refusal", err)
		}
	})
	for _, tok := range []string{tokenAPI, tokenExpired} {
		if strings.Contains(f.logs.String(), tok) {
			t.Error("a token appears in the logs")
		}
	}
	if !strings.Contains(f.logs.String(), "bootstrap token of spiffe://drawbridge.internal/sidecar-api used for") {
		t.Errorf("refusal reason not logged:\n%s", f.logs.String())
	}
}

// postEnroll posts a well-formed request with an optional token and no
// client certificate, returning the status.
func postEnroll(t *testing.T, f *enrollFixture, token, service string) (int, error) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.url, bytes.NewReader(enrollBody(t, service)))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(f.ca.ca.TrustBundle().PEM())
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}}}
	defer c.CloseIdleConnections()
	res, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	res.Body.Close()
	return res.StatusCode, nil
}

// enrollBody is an enrollment request for service with a fresh CSR.
func enrollBody(t *testing.T, service string) []byte {
	t.Helper()
	csr := pkitest.CSR(t)
	body, _ := json.Marshal(struct {
		CSR      string `json:"csr"`
		Identity string `json:"identity"`
	}{
		CSR:      string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr.Raw})),
		Identity: "spiffe://drawbridge.internal/" + service,
	})
	return body
}
