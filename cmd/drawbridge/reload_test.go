package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
)

func namedBackend(t *testing.T, name string) string {
	t.Helper()
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, name) }))
	t.Cleanup(b.Close)
	return strings.TrimPrefix(b.URL, "http://")
}

func reloadConfig(admin, edge, target string) string {
	return fmt.Sprintf(`
admin: {address: %q}
listeners:
  edge:
    address: %q
    routes: [{upstream: app}]
upstreams:
  app: {targets: [%q]}
`, admin, edge, target)
}

func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return "error: " + err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func waitBody(t *testing.T, url, want string, p *process) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for getBody(t, url) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered %q; last %q\nstdout:\n%s", url, want, getBody(t, url), p.stdout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func metricValue(t *testing.T, admin, series string) string {
	t.Helper()
	for _, line := range strings.Split(getBody(t, "http://"+admin+"/metrics"), "\n") {
		if strings.HasPrefix(line, series+" ") {
			return strings.TrimPrefix(line, series+" ")
		}
	}
	return ""
}

// TestRunReloadsItsConfig edits the file in place (what a Compose bind
// mount sees), breaks it, and reloads by SIGHUP after a rename.
func TestRunReloadsItsConfig(t *testing.T) {
	a, b, c := namedBackend(t, "a"), namedBackend(t, "b"), namedBackend(t, "c")
	edge, admin := drawtest.FreeAddr(t), drawtest.FreeAddr(t)
	path := writeFile(t, "drawbridge.yaml", reloadConfig(admin, edge, a))
	p := startProcess(t, "run", "--config", path)
	waitHTTP(t, "http://"+admin+"/readyz", p)
	url := "http://" + edge + "/"
	waitBody(t, url, "a", p)

	// In place, as an edit through a bind mount.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString(reloadConfig(admin, edge, b))
	f.Close()
	waitBody(t, url, "b", p)
	if v := metricValue(t, admin, `drawbridge_config_reloads_total{result="success"}`); v != "1" {
		t.Errorf("reloads success = %q, want 1", v)
	}

	// A broken file is refused with its problems; b keeps serving.
	broken := strings.Replace(reloadConfig(admin, edge, "no-port"), "    routes:", "    typo: 1\n    routes:", 1)
	if err := os.WriteFile(path, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	waitForText(t, p.stdout, "configuration reload refused")
	for _, want := range []string{`upstreams.app.targets[0]`, `unknown key \"typo\"`} {
		waitForText(t, p.stdout, want)
	}
	if got := getBody(t, url); got != "b" {
		t.Errorf("after a refused reload got %q, want the running config's b", got)
	}
	if v := metricValue(t, admin, "drawbridge_config_last_reload_successful"); v != "0" {
		t.Errorf("last_reload_successful = %q, want 0", v)
	}
	if st := getBody(t, "http://"+admin+"/status.json"); !regexp.MustCompile(`"ok":\s*false`).MatchString(st) {
		t.Errorf("status.json does not show the refused reload: %.400s", st)
	}

	// Replaced by rename, applied on SIGHUP.
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(reloadConfig(admin, edge, c)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitBody(t, url, "c", p)
	if v := metricValue(t, admin, "drawbridge_config_last_reload_successful"); v != "1" {
		t.Errorf("last_reload_successful = %q after the good reload, want 1", v)
	}
}
