package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/cmd/drawbridge/internal/certfiles"
	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
	"github.com/drawbridge-proxy/drawbridge/proxy"
)

// mtlsSetup is a state dir with a CA made by `drawbridge ca init`, client
// certificates made by `drawbridge cert issue`, and a configuration with a
// mutual http listener and a mutual tcp listener.
type mtlsSetup struct {
	dir, cfg, ca string
	http, tcp    string
	admin        string
}

func newMTLSSetup(t *testing.T) *mtlsSetup {
	t.Helper()
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.Header.Get(proxy.HeaderIdentity))
	}))
	t.Cleanup(backend.Close)
	echo := drawtest.Echo(t)
	s := &mtlsSetup{dir: t.TempDir(), http: drawtest.FreeAddr(t), tcp: drawtest.FreeAddr(t), admin: drawtest.FreeAddr(t)}
	pass := filepath.Join(s.dir, "passphrase")
	if err := os.WriteFile(pass, []byte(testPassphrase+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.cfg = writeFile(t, "drawbridge.yaml", fmt.Sprintf(`
admin: {address: %q}
pki:
  state_dir: %q
  passphrase_file: %q
  check_interval: 1s
  leaf_lifetime: 1m
  intermediate_lifetime: 1h
  root_lifetime: 10h
  root_rotate_before: 2h
listeners:
  internal:
    address: %q
    tls: {mode: mutual, names: [gw, localhost], allow: ["spiffe://drawbridge.internal/clients/*"]}
    routes:
      - {match: {path_prefix: /admin}, allow: ["spiffe://drawbridge.internal/clients/admin"], upstream: app}
      - {upstream: app}
  db:
    address: %q
    protocol: tcp
    tls: {mode: mutual, names: [gw-db, localhost], allow: ["spiffe://drawbridge.internal/clients/*"]}
    routes: [{upstream: echo}]
upstreams:
  app: {targets: [%q]}
  echo: {protocol: tcp, targets: [%q]}
`, s.admin, filepath.Join(s.dir, "state"), pass, s.http, s.tcp, strings.TrimPrefix(backend.URL, "http://"), echo))
	out := runBinary(t, "ca", "init", "--config", s.cfg)
	if !strings.Contains(out, "CA created") || !strings.Contains(out, "sha256") {
		t.Fatalf("ca init printed:\n%s", out)
	}
	s.ca = filepath.Join(s.dir, "ca.crt")
	runBinary(t, "ca", "bundle", "--config", s.cfg, "--out", s.ca)
	return s
}

// issue runs `drawbridge cert issue` for name and returns the directory.
func (s *mtlsSetup) issue(t *testing.T, name string) string {
	t.Helper()
	out := filepath.Join(s.dir, strings.ReplaceAll(name, "/", "_"))
	runBinary(t, "cert", "issue", "--config", s.cfg, "--name", name, "--out", out)
	return out
}

func (s *mtlsSetup) keyPair(t *testing.T, dir string) tls.Certificate {
	t.Helper()
	c, err := tls.LoadX509KeyPair(filepath.Join(dir, certfiles.CertFile), filepath.Join(dir, certfiles.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// runBinary runs the binary to completion and returns its stdout; it fails
// the test on a non-zero exit.
func runBinary(t *testing.T, args ...string) string {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("drawbridge %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// TestMutualTLSWithRealClients runs `drawbridge run` and talks to its
// mutual listeners with openssl s_client, curl and Go, with and without
// client certificates, then rotates the root with `drawbridge ca rotate`
// under traffic.
func TestMutualTLSWithRealClients(t *testing.T) {
	openssl := needTool(t, "openssl", "openssl")
	curl := needTool(t, "curl", "curl")
	s := newMTLSSetup(t)
	web, admin, intruder := s.issue(t, "clients/web"), s.issue(t, "clients/admin"), s.issue(t, "intruder")
	p := startProcess(t, "run", "--config", s.cfg)
	waitHTTP(t, "http://"+s.admin+"/readyz", p)
	_, port, _ := net.SplitHostPort(s.http)
	url := "https://localhost:" + port

	t.Run("openssl s_client", func(t *testing.T) {
		req := "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
		out := sClient(t, openssl, req, "-connect", s.http, "-servername", "localhost", "-CAfile", s.ca,
			// -cert sends the leaf only; -cert_chain adds the intermediate
			// from the same file, which the gateway needs to verify it.
			"-cert", filepath.Join(web, certfiles.CertFile), "-cert_chain", filepath.Join(web, certfiles.CertFile), "-key", filepath.Join(web, certfiles.KeyFile))
		if !strings.Contains(out, "Verify return code: 0 (ok)") || !strings.Contains(out, "HTTP/1.1 200") ||
			!strings.Contains(out, "spiffe://drawbridge.internal/clients/web") {
			t.Errorf("with a client certificate:\n%s", out)
		}
		out = sClient(t, openssl, req, "-connect", s.http, "-servername", "localhost", "-CAfile", s.ca)
		if strings.Contains(out, "HTTP/1.1") || !strings.Contains(out, "certificate required") {
			t.Errorf("without a client certificate, want the alert and no HTTP answer:\n%s", out)
		}
	})

	t.Run("curl", func(t *testing.T) {
		for _, tc := range []struct {
			name, dir, path, spoof string
			code                   string // "000": the handshake failed
			body                   string
		}{
			{"client certificate", web, "/", "", "200", "spiffe://drawbridge.internal/clients/web"},
			{"spoofed identity header", web, "/", "spiffe://drawbridge.internal/clients/admin", "200", "spiffe://drawbridge.internal/clients/web"},
			{"route for another identity", web, "/admin/x", "", "403", ""},
			{"route for this identity", admin, "/admin/x", "", "200", "spiffe://drawbridge.internal/clients/admin"},
			{"identity outside the listener's allow list", intruder, "/", "", "403", ""},
			{"no client certificate", "", "/", "", "000", ""},
		} {
			args := []string{"-sS", "--cacert", s.ca, "-o", "-", "-w", "\n%{http_code}", url + tc.path}
			if tc.dir != "" {
				args = append(args, "--cert", filepath.Join(tc.dir, certfiles.CertFile), "--key", filepath.Join(tc.dir, certfiles.KeyFile))
			}
			if tc.spoof != "" {
				args = append(args, "-H", proxy.HeaderIdentity+": "+tc.spoof)
			}
			out, _ := exec.Command(curl, args...).Output()
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			code := lines[len(lines)-1]
			if code != tc.code || (tc.body != "" && lines[0] != tc.body) {
				t.Errorf("%s: curl printed %q; want status %s, body %q", tc.name, out, tc.code, tc.body)
			}
		}
	})

	t.Run("tcp listener", func(t *testing.T) {
		if got, err := tcpEchoThrough(s, s.keyPair(t, web)); err != nil || got != "ping" {
			t.Errorf("allowed identity: got %q, %v", got, err)
		}
		if got, err := tcpEchoThrough(s, s.keyPair(t, intruder)); err == nil {
			t.Errorf("identity outside the allow list relayed %q; want a closed connection", got)
		}
	})

	// The identity is in the access log; refusals are logged with their
	// reason and counted.
	waitForText(t, p.stdout, `"identity":"spiffe://drawbridge.internal/clients/web"`)
	waitForText(t, p.stdout, `"reason":"no_certificate"`)
	waitForText(t, p.stdout, `"reason":"identity_not_allowed"`)
	metrics := httpBody(t, "http://"+s.admin+"/metrics")
	for _, want := range []string{`drawbridge_pki_handshake_failures_total{reason="no_certificate"}`,
		`drawbridge_authz_denied_total{listener="internal",reason="identity_not_allowed",route="internal/0"}`,
		`drawbridge_pki_certificate_expiry_timestamp_seconds{kind="leaf",name="spiffe://drawbridge.internal/gw"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s; it has:\n%s", want, grepLines(metrics, "authz|handshake_failures"))
		}
	}

	t.Run("ca rotate under traffic", func(t *testing.T) {
		rotateUnderTraffic(t, s, s.keyPair(t, web), url)
	})
}

func sClient(t *testing.T, openssl, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(openssl, append([]string{"s_client", "-ign_eof"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, _ := cmd.CombinedOutput() // a refused handshake exits non-zero
	return string(out)
}

func tcpEchoThrough(s *mtlsSetup, cert tls.Certificate) (string, error) {
	pool := x509.NewCertPool()
	b, _ := os.ReadFile(s.ca)
	pool.AppendCertsFromPEM(b)
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", s.tcp,
		&tls.Config{RootCAs: pool, ServerName: "localhost", Certificates: []tls.Certificate{cert}})
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "ping"); err != nil {
		return "", err
	}
	buf := make([]byte, 4)
	_, err = io.ReadFull(c, buf)
	return string(buf), err
}

func httpBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// rotateUnderTraffic runs `drawbridge ca rotate` while clients that trust
// only the old root open new connections as fast as they can and one
// keep-alive connection stays open; not one handshake or request may fail.
func rotateUnderTraffic(t *testing.T, s *mtlsSetup, cert tls.Certificate, url string) {
	oldBundle, _ := os.ReadFile(s.ca)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(oldBundle)
	newClient := func(keepAlive bool) *http.Client {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}, DisableKeepAlives: !keepAlive,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, s.http)
			},
		}}
	}
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		c := newClient(i == 0) // one keep-alive client, three with a new connection per request
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get(url + "/")
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				ok.Add(1)
			}
		})
	}
	time.Sleep(500 * time.Millisecond)
	out := runBinary(t, "ca", "rotate", "--config", s.cfg)
	if !strings.Contains(out, "root (retiring)") {
		t.Errorf("ca rotate printed:\n%s", out)
	}
	// The gateway picks the new bundle up within check_interval (1s).
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(httpBody(t, "http://"+s.admin+"/status.json"), "root CA (retiring)") {
		if time.Now().After(deadline) {
			t.Fatal("the running gateway did not take the new trust bundle")
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	if failed.Load() > 0 || ok.Load() < 20 {
		t.Errorf("during the rotation: %d requests ok, %d failed (first: %v)", ok.Load(), failed.Load(), firstErr.Load())
	}
	var st struct {
		Certificates []struct{ Name string } `json:"certificates"`
	}
	_ = json.Unmarshal([]byte(httpBody(t, "http://"+s.admin+"/status.json")), &st)
	t.Logf("%d requests during the rotation, none failed; status page certificates: %v", ok.Load(), st.Certificates)
}

// TestCertIssueWatchRenewsInPlace runs `cert issue --watch` with one-minute
// leaves and waits for it to replace the files with a renewed certificate.
func TestCertIssueWatchRenewsInPlace(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a renewal (about 40s)")
	}
	t.Parallel()
	s := newMTLSSetup(t)
	out := filepath.Join(s.dir, "db")
	p := startProcess(t, "cert", "issue", "--config", s.cfg, "--name", "app", "--dns", "db.drawbridge.internal", "--out", out, "--watch")
	waitFile(t, filepath.Join(out, certfiles.CertFile), 30*time.Second)
	first := s.keyPair(t, out)
	info, err := os.Stat(filepath.Join(out, certfiles.KeyFile))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("tls.key mode %v, %v; want 0600", info.Mode(), err)
	}
	leaf, _ := x509.ParseCertificate(first.Certificate[0])
	if leaf.Subject.CommonName != "spiffe://drawbridge.internal/app" || len(leaf.URIs) != 1 || leaf.URIs[0].String() != "spiffe://drawbridge.internal/app" ||
		len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "db.drawbridge.internal" {
		t.Errorf("leaf CN %q, URIs %v, DNS %v; want the SPIFFE ID in both", leaf.Subject.CommonName, leaf.URIs, leaf.DNSNames)
	}
	deadline := time.Now().Add(75 * time.Second)
	for {
		c, err := tls.LoadX509KeyPair(filepath.Join(out, certfiles.CertFile), filepath.Join(out, certfiles.KeyFile))
		if err == nil && !bytes.Equal(c.Certificate[0], first.Certificate[0]) {
			renewed, _ := x509.ParseCertificate(c.Certificate[0])
			if !renewed.NotAfter.After(leaf.NotAfter) {
				t.Errorf("renewed certificate expires %v, not after %v", renewed.NotAfter, leaf.NotAfter)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the files were not renewed within 75s\nstderr:\n%s", p.stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Only complete files were ever in place: no temporary file is left.
	entries, _ := os.ReadDir(out)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary file %s left in %s", e.Name(), out)
		}
	}
}

func grepLines(s, pattern string) string {
	re := regexp.MustCompile(pattern)
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if re.MatchString(l) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
