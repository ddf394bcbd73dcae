package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/cmd/drawbridge/internal/config"
	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
	"github.com/drawbridge-proxy/drawbridge/pki/store"
)

// TestPassphraseRotationReseals: a new passphrase written to the secret
// file re-seals the state dir without a restart; a short one is refused and
// the new one stays in service.
func TestPassphraseRotationReseals(t *testing.T) {
	tg := startTLSGateway(t, "10m")
	path := tg.cfg.PKI.PassphraseFile
	keyring := filepath.Join(tg.stateDir, "drawbridge", "keyring.json")
	before, _ := os.ReadFile(keyring)
	const next = "the next passphrase, also long enough"
	if err := os.WriteFile(path, []byte(next+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tg.gw.secrets.Check() // the watcher's own loop may see the change first
	poll(t, 20*time.Second, "the re-seal", func() bool {
		now, _ := os.ReadFile(keyring)
		_, journal := os.Stat(filepath.Join(tg.stateDir, "drawbridge", "keyring-reseal.json"))
		return string(now) != string(before) && journal != nil
	})
	ctx := context.Background()
	if _, err := store.OpenStorage(ctx, tg.stateDir, []byte(testPassphrase)); !errors.Is(err, store.ErrWrongPassphrase) {
		t.Fatalf("the old passphrase after rotation: %v, want ErrWrongPassphrase", err)
	}
	if _, err := store.OpenStorage(ctx, tg.stateDir, []byte(next)); err != nil {
		t.Fatalf("the new passphrase: %v", err)
	}
	if err := os.WriteFile(path, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tg.gw.secrets.Check()
	time.Sleep(200 * time.Millisecond)
	if _, err := store.OpenStorage(ctx, tg.stateDir, []byte(next)); err != nil {
		t.Fatalf("after a refused short passphrase, the previous one must still open the state dir: %v", err)
	}
	// The gateway keeps issuing and serving: renew everything under the
	// re-sealed storage, then send a request.
	if err := tg.pki.pki.Manager.Renew(ctx); err != nil {
		t.Fatalf("renewing after the re-seal: %v", err)
	}
	tr := startTraffic(tg)
	time.Sleep(300 * time.Millisecond)
	close(tr.stop)
	tr.wg.Wait()
	if tr.failed.Load() > 0 || tr.ok.Load() == 0 {
		t.Errorf("after the re-seal: %d ok, %d failed (%v)", tr.ok.Load(), tr.failed.Load(), tr.firstErr.Load())
	}
}

// TestSidecarEnrollsWithTheGateway runs a gateway with an enrollment
// listener and a sidecar (no CA key) that enrolls with a bootstrap token and
// serves a mutual listener with the certificate it got.
func TestSidecarEnrollsWithTheGateway(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte(strings.Repeat("t0ken", 8)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	enrollAddr := drawtest.FreeAddr(t)
	tg := startTLSGateway(t, "10m", fmt.Sprintf(`  enrollment_listener: {address: %q, names: [localhost]}
  enrollment:
    tokens:
      - {identity: "spiffe://drawbridge.internal/sidecar-api", token_file: %q, dns_names: [localhost]}
`, enrollAddr, token))
	caFile := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(caFile, tg.pki.pki.Manager.TrustBundle().PEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "sidecar saw "+r.Header.Get("X-Drawbridge-Identity"))
	}))
	defer backend.Close()
	_, port, _ := net.SplitHostPort(enrollAddr)
	sidecarAddr := drawtest.FreeAddr(t)
	yaml := fmt.Sprintf(`
admin: {address: %q}
%s  identity: sidecar-api
  enroll: {url: "https://localhost:%s/v1/pki/enroll", token_file: %q, ca_file: %q}
listeners:
  in:
    address: %q
    tls: {mode: mutual, names: [sidecar-api, localhost]}
    routes: [{upstream: api}]
upstreams:
  api: {targets: [%q]}
`, drawtest.FreeAddr(t), pkiSection(t, "  check_interval: 1s\n"), port, token, caFile, sidecarAddr, strings.TrimPrefix(backend.URL, "http://"))
	f, err := config.Parse("sidecar.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if err := checkSidecar(f); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan *gateway, 1)
	go func() { done <- serve(ctx, f, io.Discard, func(gw *gateway) { ready <- gw }) }()
	var sc *gateway
	select {
	case sc = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("sidecar: %v", err)
	}
	defer func() { cancel(); <-done }()
	if sc.pki.pki.CA != nil {
		t.Error("the sidecar holds a CA")
	}
	drawtest.WaitFor(t, "sidecar ready", func() bool { return sc.proxy.Ready() && sc.pki.ready() == nil })
	client := caClient(t, caFile, sidecarAddr)
	client.Transport.(*http.Transport).TLSClientConfig = tg.clientTLS.Clone()
	resp, err := client.Get("https://localhost/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "sidecar saw spiffe://drawbridge.internal/client" {
		t.Errorf("through the sidecar: %d %q", resp.StatusCode, body)
	}
	if iss := resp.TLS.PeerCertificates[0].URIs[0].String(); iss != "spiffe://drawbridge.internal/sidecar-api" {
		t.Errorf("the sidecar presented %s", iss)
	}

	// The CA goes away: the sidecar keeps serving with its certificate,
	// stays ready, and its status page says since when the CA is unreachable.
	if ca := sc.snapshot(nil).CA; ca == nil || !ca.UnreachableSince.IsZero() {
		t.Fatalf("status with the CA up: %+v, want a reachable CA", ca)
	}
	tg.pki.enroll.close()
	drawtest.WaitFor(t, "the status page to say the CA is unreachable", func() bool {
		ca := sc.snapshot(nil).CA
		return ca != nil && !ca.UnreachableSince.IsZero()
	})
	snap := sc.snapshot(nil)
	if !snap.Ready || !slices.ContainsFunc(snap.Problems(), func(p string) bool { return strings.HasPrefix(p, "CA unreachable since ") }) {
		t.Errorf("CA away: ready %v, problems %q; want ready and \"CA unreachable since ...\"", snap.Ready, snap.Problems())
	}
	if resp, err := client.Get("https://localhost/"); err != nil {
		t.Errorf("through the sidecar with the CA away: %v", err)
	} else {
		resp.Body.Close()
	}
}

func TestSidecarRefusesACAConfiguration(t *testing.T) {
	addrs := strings.NewReplacer("{{EDGE}}", drawtest.FreeAddr(t), "{{ADMIN}}", drawtest.FreeAddr(t))
	cfg := writeFile(t, "gw.yaml", addrs.Replace(gatewayYAML(`["127.0.0.1:1"]`, pkiSection(t, ""))))
	code, _, stderr := runCLI(t, "sidecar", "--config", cfg)
	if code != 1 || !strings.Contains(stderr, "pki has no enroll block") || !strings.Contains(stderr, "drawbridge run") {
		t.Errorf("sidecar on a CA configuration: exit %d, stderr %q", code, stderr)
	}
	cfg = writeFile(t, "plain.yaml", addrs.Replace(gatewayYAML(`["127.0.0.1:1"]`, "")))
	if code, _, stderr = runCLI(t, "sidecar", "--config", cfg); code != 1 || !strings.Contains(stderr, "no pki section") {
		t.Errorf("sidecar without pki: exit %d, stderr %q", code, stderr)
	}
}

func TestPKIConfigProblems(t *testing.T) {
	yaml := strings.NewReplacer("{{EDGE}}", "127.0.0.1:18443", "{{ADMIN}}", "127.0.0.1:19090").Replace(`
admin: {address: "{{ADMIN}}"}
pki:
  state_dir: relative/dir
  passphrase_file: passphrase
  identity: "bad id"
listeners:
  edge:
    address: "{{EDGE}}"
    tls: {mode: mutual, names: [edge, "not.permitted.example"], allow: ["spiffe://other.domain/x"]}
    routes:
      - {upstream: app, allow: ["spiffe://drawbridge.internal/a*"]}
  plain:
    address: 127.0.0.1:18444
    routes:
      - {upstream: app, allow: ["spiffe://drawbridge.internal/a"]}
upstreams:
  app:
    protocol: https
    targets: ["10.0.0.1:443"]
    tls: {client_identity: "spiffe://other.domain/app"}
`)
	_, err := config.Parse("pki.yaml", []byte(yaml))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		"line 4: pki.state_dir: must be an absolute path",
		"line 5: pki.passphrase_file: must be an absolute path",
		"line 6: pki.identity:",
		`listeners.edge.tls.names[1]: "not.permitted.example" is not a DNS name within pki.permitted_dns_domains`,
		`listeners.edge.tls.allow[0]: "spiffe://other.domain/x" is outside pki.trust_domain`,
		"listeners.edge.routes[0].allow[0]:",
		"listeners.plain.routes[0].allow: identities can only be checked on an http listener with tls.mode: mutual",
		`upstreams.app.tls.client_identity: "spiffe://other.domain/app" is outside pki.trust_domain`,
		"upstreams.app.tls: set identity (the SPIFFE ID the targets present) or server_name",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("problems lack %q:\n%v", want, err)
		}
	}
	_, err = config.Parse("nopki.yaml", []byte(`
listeners:
  edge: {address: 127.0.0.1:18443, tls: {mode: server}, routes: [{upstream: app}]}
upstreams:
  app: {targets: ["127.0.0.1:1"]}
`))
	if err == nil || !strings.Contains(err.Error(), "listeners.edge.tls.certificate: internal needs a pki section") {
		t.Errorf("TLS without a pki section: %v", err)
	}
}

// TestPKIOnlyFile: the ca, cert issue and trust-bundle commands take a file
// with only a pki section; run and sidecar refuse it, naming listeners.
func TestPKIOnlyFile(t *testing.T) {
	cfg := caConfig(t)
	code, out, stderr := runCLI(t, "ca", "init", "--config", cfg)
	if code != 0 || !strings.Contains(out, "CA created.") || !strings.Contains(out, "intermediate") {
		t.Fatalf("ca init: %d\n%s%s", code, out, stderr)
	}
	for _, args := range [][]string{
		{"ca", "status", "--config", cfg},
		{"ca", "rotate", "--config", cfg},
		{"ca", "bundle", "--config", cfg},
		{"cert", "issue", "--config", cfg, "--name", "db", "--out", t.TempDir()},
	} {
		if code, out, stderr := runCLI(t, args...); code != 0 || out == "" {
			t.Errorf("%v: %d\nstdout %q\nstderr %s", args, code, out, stderr)
		}
	}
	for _, cmd := range []string{"run", "sidecar", "validate"} {
		code, _, stderr := runCLI(t, cmd, "--config", cfg)
		if code != 1 || !strings.Contains(stderr, "listeners: at least one listener is required to serve") {
			t.Errorf("%s with only a pki section: %d %s", cmd, code, stderr)
		}
	}
	noPKI := writeFile(t, "nopki.yaml", "admin: {address: 127.0.0.1:0}\n")
	if code, _, stderr := runCLI(t, "ca", "status", "--config", noPKI); code != 1 || !strings.Contains(stderr, "pki: a pki section is required") {
		t.Errorf("ca status without a pki section: %d %s", code, stderr)
	}
}

// TestCAServesEnrollmentOnly: the ca role of a multi-node deployment is a
// file with a pki section and its enrollment listener and no listener of
// the data plane; run serves it (ready, the endpoint answers), and a
// sidecar enrolls with it.
func TestCAServesEnrollmentOnly(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte(strings.Repeat("t0ken", 8)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	enrollAddr, adminAddr := drawtest.FreeAddr(t), drawtest.FreeAddr(t)
	f, err := config.Parse("ca.yaml", []byte(fmt.Sprintf("admin: {address: %q}\n%s", adminAddr, pkiSection(t, fmt.Sprintf(`  identity: ca
  enrollment_listener: {address: %q, names: [localhost]}
  enrollment:
    tokens:
      - {identity: "spiffe://drawbridge.internal/sidecar-api", token_file: %q, dns_names: [localhost]}
`, enrollAddr, token)))))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan *gateway, 1)
	go func() { done <- serve(ctx, f, io.Discard, func(gw *gateway) { ready <- gw }) }()
	var ca *gateway
	select {
	case ca = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("ca: %v", err)
	}
	defer func() { cancel(); <-done }()
	drawtest.WaitFor(t, "the CA ready", func() bool { _, ok := ca.health.Ready(); return ok })
	caFile := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(caFile, ca.pki.pki.Manager.TrustBundle().PEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(enrollAddr)
	sidecar, err := config.Parse("sidecar.yaml", []byte(fmt.Sprintf(`
admin: {address: %q}
%s  identity: sidecar-api
  enroll: {url: "https://localhost:%s/v1/pki/enroll", token_file: %q, ca_file: %q}
listeners:
  in: {address: %q, tls: {mode: mutual, names: [sidecar-api, localhost]}, routes: [{upstream: app}]}
upstreams:
  app: {targets: ["127.0.0.1:1"]}
`, drawtest.FreeAddr(t), pkiSection(t, ""), port, token, caFile, drawtest.FreeAddr(t))))
	if err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithCancel(ctx)
	sdone := make(chan error, 1)
	sready := make(chan *gateway, 1)
	go func() { sdone <- serve(sctx, sidecar, io.Discard, func(gw *gateway) { sready <- gw }) }()
	select {
	case sc := <-sready:
		if held := sc.pki.pki.Manager.Held(); len(held) != 1 || held[0].Identity != "spiffe://drawbridge.internal/sidecar-api" {
			t.Errorf("the sidecar holds %+v, want its enrolled certificate", held)
		}
	case err := <-sdone:
		t.Errorf("sidecar enrolling with the CA-only instance: %v", err)
	}
	scancel()
	<-sdone
}
