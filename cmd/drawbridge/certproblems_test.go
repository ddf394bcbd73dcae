package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/cmd/drawbridge/internal/config"
	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
	"github.com/drawbridge-proxy/drawbridge/telemetry/status"
)

// statusJSON is the part of /status.json these tests read.
type statusJSON struct {
	Problems []string `json:"problems"`
	Certs    []struct {
		Name    string    `json:"name"`
		RenewAt time.Time `json:"renew_at"`
	} `json:"certificates"`
	Traffic []status.Traffic `json:"traffic"`
}

// routeSuccess is the success ratio of a route over the last minute; -1
// when it has no traffic.
func (s statusJSON) routeSuccess(listener, route string) float64 {
	for _, t := range s.Traffic {
		if t.Kind == "route" && t.Group == listener && t.Name == route {
			return t.Last1m.Success
		}
	}
	return -1
}

// demoRun is a demo started in this process.
type demoRun struct {
	edge, admin, stateDir string
	client                *http.Client // trusts the demo CA, dials the edge
	base                  string       // https://localhost:PORT
}

// startDemo runs the demo on free loopback addresses until the test ends
// and waits until its API answers; banner receives what it prints.
func startDemo(t *testing.T, logOut, banner io.Writer) *demoRun {
	t.Helper()
	d := &demoRun{edge: drawtest.FreeAddr(t), admin: drawtest.FreeAddr(t), stateDir: t.TempDir()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runDemo(ctx, demoOptions{edge: d.edge, admin: d.admin, stateDir: d.stateDir}, logOut, banner)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	_, port, _ := net.SplitHostPort(d.edge)
	d.base = "https://localhost:" + port
	waitFile(t, filepath.Join(d.stateDir, "ca.crt"), 30*time.Second)
	d.client = caClient(t, filepath.Join(d.stateDir, "ca.crt"), d.edge)
	poll(t, 20*time.Second, "the demo to serve", func() bool {
		resp, err := d.client.Get(d.base + "/api/hello")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return d
}

// TestFreshDemoHasNoProblems: the demo's 24h leaves, issued a minute ago,
// are no problem on the status page, in /status.json or in /readyz.
func TestFreshDemoHasNoProblems(t *testing.T) {
	d := startDemo(t, io.Discard, io.Discard)
	var st statusJSON
	poll(t, 15*time.Second, "the demo's upstreams to be up", func() bool {
		st = statusJSON{}
		getJSON(t, "http://"+d.admin+"/status.json", &st)
		return len(st.Problems) == 0
	})
	leaves := 0
	for _, c := range st.Certs {
		if strings.HasPrefix(c.Name, "leaf ") {
			leaves++
			if c.RenewAt.IsZero() {
				t.Errorf("%s has no renewal point", c.Name)
			}
		}
	}
	if leaves < 3 {
		t.Errorf("status.json lists %d leaves, want the edge's, drawbridge's and the demo services'", leaves)
	}
	if code, body := httpGet(t, "http://"+d.admin+"/status"); code != 200 || !strings.Contains(body, "Everything is up.") ||
		strings.Contains(body, `data-problem="yes"`) {
		t.Errorf("/status of a fresh demo: %d, want no problem:\n%s", code, body)
	}
	if code, body := httpGet(t, "http://"+d.admin+"/readyz"); code != 200 {
		t.Errorf("/readyz: %d %s", code, body)
	}
}

// TestFailingRenewalIsOneProblem: a sidecar whose CA has gone away cannot
// renew its leaf; two checks after the renewal point the status page,
// /status.json and the metrics show exactly that one problem, while the
// gateway stays ready (the leaf still serves).
func TestFailingRenewalIsOneProblem(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a renewal point (about 10s)")
	}
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte(strings.Repeat("t0ken", 8)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	enrollAddr := drawtest.FreeAddr(t)
	tg := startTLSGateway(t, "1m", fmt.Sprintf(`  enrollment_listener: {address: %q, names: [localhost]}
  enrollment:
    tokens:
      - {identity: "spiffe://drawbridge.internal/sidecar-api", token_file: %q, dns_names: [localhost]}
`, enrollAddr, token))
	caFile := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(caFile, tg.pki.pki.Manager.TrustBundle().PEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(enrollAddr)
	admin := drawtest.FreeAddr(t)
	// Renewal with 90% of the one-minute life left: due 6s after issuance.
	yaml := fmt.Sprintf(`
admin: {address: %q}
%s  identity: sidecar-api
  renewal_ratio: 0.9
  check_interval: 1s
  enroll: {url: "https://localhost:%s/v1/pki/enroll", token_file: %q, ca_file: %q}
listeners:
  in:
    address: %q
    tls: {mode: mutual, names: [sidecar-api, localhost]}
    routes: [{upstream: api}]
upstreams:
  api: {targets: ["127.0.0.1:1"]}
`, admin, pkiSection(t, ""), port, token, caFile, drawtest.FreeAddr(t))
	f, err := config.Parse("sidecar.yaml", []byte(yaml))
	if err != nil {
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
	drawtest.WaitFor(t, "sidecar ready", func() bool { return sc.proxy.Ready() && sc.pki.ready() == nil })
	tg.pki.enroll.close() // the CA's enrollment endpoint goes away: every renewal fails

	var st statusJSON
	poll(t, 30*time.Second, "the overdue renewal to show", func() bool {
		st = statusJSON{}
		getJSON(t, "http://"+admin+"/status.json", &st)
		return len(certProblems(st.Problems)) > 0
	})
	if got := certProblems(st.Problems); len(got) != 1 || !strings.Contains(got[0], "leaf spiffe://drawbridge.internal/sidecar-api was due for renewal") {
		t.Errorf("certificate problems %q, want the sidecar's leaf only", got)
	}
	if _, body := httpGet(t, "http://"+admin+"/status"); strings.Count(body, `data-problem="yes"`) != 1 {
		t.Errorf("/status flags %d certificates, want 1", strings.Count(body, `data-problem="yes"`))
	}
	if code, body := httpGet(t, "http://"+admin+"/readyz"); strings.Contains(body, "sidecar-api") {
		t.Errorf("/readyz fails on an overdue renewal of a leaf that still serves: %d %s", code, body)
	}
	_, metrics := httpGet(t, "http://"+admin+"/metrics")
	for _, want := range []string{
		`drawbridge_pki_certificate_renewal_timestamp_seconds{kind="leaf",name="spiffe://drawbridge.internal/sidecar-api"}`,
		`drawbridge_pki_certificate_check_interval_seconds{kind="leaf",name="spiffe://drawbridge.internal/sidecar-api"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func certProblems(all []string) []string {
	var out []string
	for _, p := range all {
		if strings.HasPrefix(p, "certificate ") {
			out = append(out, p)
		}
	}
	return out
}

// TestDemoBannerComesLast: with logs and banner on one screen, the banner
// follows every start-up line, after the listeners serve, and certmagic's
// per-step lock lines are not among them.
func TestDemoBannerComesLast(t *testing.T) {
	screen := &drawtest.Buffer{}
	d := startDemo(t, screen, screen)
	poll(t, 10*time.Second, "the banner", func() bool { return strings.Contains(screen.String(), "Press Ctrl-C to stop.") })
	before, banner, _ := strings.Cut(screen.String(), "drawbridge demo is running")
	lines := strings.Split(strings.TrimSpace(before), "\n")
	if !strings.Contains(before, `"msg":"listening","listener":"edge","address":"`+d.edge+`"`) {
		t.Errorf("the banner came before the edge listener's line:\n%s", before)
	}
	for _, step := range []string{"acquiring lock", "lock acquired", "releasing lock", "obtaining certificate"} {
		if strings.Contains(before, step) {
			t.Errorf("certmagic's %q line is logged at info", step)
		}
	}
	if len(lines) > 12 {
		t.Errorf("%d lines before the banner, want at most 12:\n%s", len(lines), before)
	}
	if !strings.Contains(banner, "https://localhost:") || !strings.Contains(banner, "/status") {
		t.Errorf("banner: %s", banner)
	}
	t.Logf("%d log lines, then the banner", len(lines))
}
