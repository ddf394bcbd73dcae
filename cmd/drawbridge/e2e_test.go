package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
)

// buildBinary compiles drawbridge once per test run.
var buildBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "drawbridge-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "drawbridge")
	out, err := exec.Command("go", "build", "-race", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	return bin, nil
})

type process struct {
	cmd    *exec.Cmd
	stdout *drawtest.Buffer
	stderr *drawtest.Buffer
	done   chan error
}

func startProcess(t *testing.T, args ...string) *process {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	return startBinary(t, bin, args...)
}

// startBinary runs bin with args until the test ends.
func startBinary(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(bin, args...), stdout: &drawtest.Buffer{}, stderr: &drawtest.Buffer{}, done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		p.done <- nil
	})
	return p
}

func waitHTTP(t *testing.T, url string, p *process) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never answered 200\nstdout:\n%s\nstderr:\n%s", url, p.stdout, p.stderr)
}

// TestRunServesAndDrainsOnSIGTERM runs the real binary on a config file,
// proxies through it, and checks the JSON access log and a clean exit.
func TestRunServesAndDrainsOnSIGTERM(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(400 * time.Millisecond)
		}
		fmt.Fprintf(w, "backend saw %s", r.URL.Path)
	}))
	defer backend.Close()
	edge, admin := drawtest.FreeAddr(t), drawtest.FreeAddr(t)
	cfg := writeFile(t, "drawbridge.yaml", fmt.Sprintf(`
admin: {address: %q}
listeners:
  edge:
    address: %q
    routes:
      - match: {path_prefix: /api}
        strip_prefix: true
        upstream: app
upstreams:
  app: {targets: [%q]}
`, admin, edge, strings.TrimPrefix(backend.URL, "http://")))
	p := startProcess(t, "run", "--config", cfg)
	waitHTTP(t, "http://"+admin+"/readyz", p)

	resp, err := http.Get("http://" + edge + "/api/hello?token=secret")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "backend saw /hello" {
		t.Fatalf("got %q", body)
	}

	slow := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + edge + "/api/slow")
		if err != nil {
			slow <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		slow <- string(b)
	}()
	time.Sleep(100 * time.Millisecond)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if got := <-slow; got != "backend saw /slow" {
		t.Errorf("in-flight request during SIGTERM got %q", got)
	}
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Fatalf("exit: %v\nstderr: %s", err, p.stderr)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("drawbridge did not exit after SIGTERM")
	}

	var access []map[string]any
	sc := bufio.NewScanner(strings.NewReader(p.stdout.String()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("stdout line is not JSON: %q", sc.Text())
		}
		if m["msg"] == "access" {
			access = append(access, m)
		}
	}
	if len(access) != 2 {
		t.Fatalf("got %d access lines, want 2:\n%s", len(access), p.stdout)
	}
	first := access[0]
	for _, key := range []string{"time", "request_id", "listener", "route", "method", "host", "path", "proto", "status",
		"bytes_in", "bytes_out", "duration_ms", "upstream_target", "upstream_status", "upstream_duration_ms", "attempts", "client_ip"} {
		if _, ok := first[key]; !ok {
			t.Errorf("access line lacks %q: %v", key, first)
		}
	}
	if first["path"] != "/api/hello" || strings.Contains(p.stdout.String(), "secret") {
		t.Errorf("path %v; the query string (with its token) must not be logged", first["path"])
	}
}

// TestShutdownDelayServesWhileNotReady: with shutdown_delay, SIGTERM makes
// /readyz fail at once while the listener keeps accepting new connections
// for the delay, so a load balancer that checks /readyz takes the
// instance out before anything is refused; then it drains and exits.
func TestShutdownDelayServesWhileNotReady(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	defer backend.Close()
	edge, admin := drawtest.FreeAddr(t), drawtest.FreeAddr(t)
	cfg := writeFile(t, "drawbridge.yaml", fmt.Sprintf(`
admin: {address: %q}
shutdown_delay: 1500ms
listeners:
  edge: {address: %q, routes: [{upstream: app}]}
upstreams:
  app: {targets: [%q]}
`, admin, edge, strings.TrimPrefix(backend.URL, "http://")))
	p := startProcess(t, "run", "--config", cfg)
	waitHTTP(t, "http://"+admin+"/readyz", p)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	noClient := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Second}
	status := func(url string) int {
		resp, err := noClient.Get(url)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for status("http://"+admin+"/readyz") == http.StatusOK {
		if time.Since(sent) > time.Second {
			t.Fatal("/readyz still 200 a second after SIGTERM")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for time.Since(sent) < time.Second {
		if code := status("http://" + edge + "/"); code != http.StatusOK {
			t.Fatalf("%v after SIGTERM, within shutdown_delay: a new request got %d, want 200", time.Since(sent), code)
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Fatalf("exit: %v\nstderr: %s", err, p.stderr)
		}
		if d := time.Since(sent); d < 1500*time.Millisecond {
			t.Errorf("exited %v after SIGTERM, before shutdown_delay ended", d)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("drawbridge did not exit after SIGTERM and shutdown_delay")
	}
}

func TestDemoServesWebAndAPI(t *testing.T) {
	edge, admin := drawtest.FreeAddr(t), drawtest.FreeAddr(t)
	state := t.TempDir()
	p := startProcess(t, "demo", "--edge", edge, "--http", "127.0.0.1:0", "--admin", admin, "--state-dir", state)
	waitHTTP(t, "http://"+admin+"/readyz", p)

	// The banner says where the root certificate is and gives a curl line.
	caFile := filepath.Join(state, "ca.crt")
	_, port, _ := net.SplitHostPort(edge)
	curlLine := "curl -s --cacert " + caFile + " https://localhost:" + port + "/api/hello"
	waitForText(t, p.stderr, curlLine)
	client := caClient(t, caFile, edge)
	resp, err := client.Get("https://localhost:" + port + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), "<title>drawbridge demo</title>") {
		t.Errorf("web page: %s", page)
	}
	if resp.TLS == nil || resp.ProtoMajor != 2 {
		t.Errorf("edge: TLS %v, HTTP/%d; want HTTPS with HTTP/2", resp.TLS != nil, resp.ProtoMajor)
	}
	// Plain HTTP is not served on the edge.
	if resp, err := http.Get("http://" + edge + "/api/hello"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("the edge answered plain HTTP")
		}
	}
	// The banner's curl line works, run as printed.
	out, err := exec.Command("sh", "-c", curlLine).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", curlLine, err, out)
	}
	var hello map[string]string
	if err := json.Unmarshal(out, &hello); err != nil || !strings.Contains(hello["message"], "through drawbridge") {
		t.Errorf("api through curl: %s (%v)", out, err)
	}
	// The demo apps were reached over mTLS and the upstreams verified by
	// identity: the access log names the https targets with a 200.
	waitForText(t, p.stdout, `"upstream":"api"`)
	if strings.Contains(p.stdout.String(), "tls_error") {
		t.Errorf("upstream TLS errors in the log:\n%s", p.stdout)
	}
}

func waitForText(t *testing.T, b *drawtest.Buffer, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(b.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("output lacks %q:\n%s", want, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
