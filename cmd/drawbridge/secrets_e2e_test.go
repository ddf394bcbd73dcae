package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
)

// TestSecretRotationUnderTraffic rotates every kind of secret of a running
// gateway, in place (a Compose bind mount) and by rename (Swarm, editors),
// while requests flow: none may fail, each new value must be in use within
// two poll intervals, the audit log must record each, and no secret value
// may appear in the logs, the metrics or the audit log.
func TestSecretRotationUnderTraffic(t *testing.T) {
	dir := t.TempDir()
	var seenKey atomic.Value
	seenKey.Store("")
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seenKey.Store(r.Header.Get("X-Api-Key"))
		io.WriteString(w, "ok")
	}))
	defer backend.Close()
	secretFile := func(name, value string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(value+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pass := secretFile("ca_passphrase", "first passphrase, long enough")
	apiKey := secretFile("api_key", "api-key-one")
	token := secretFile("admin_token", "admin-token-one-0123456789")
	fpKey := secretFile("fingerprint_key", "a fingerprint key of 32 bytes!!")
	auditLog := filepath.Join(dir, "audit.log")
	edge, admin := drawtest.FreeAddr(t), drawtest.FreeAddr(t)
	const poll = 300 * time.Millisecond
	cfg := writeFile(t, "drawbridge.yaml", fmt.Sprintf(`
admin: {address: %q, token_file: %q}
audit: {path: %q, fingerprint_key_file: %q}
secrets: {poll_interval: %s}
pki:
  state_dir: %q
  passphrase_file: %q
listeners:
  edge:
    address: %q
    tls: {mode: server, names: [localhost]}
    routes:
      - upstream: app
        request_headers: {set_secret: {X-Api-Key: "file:%s"}}
upstreams:
  app: {targets: [%q]}
`, admin, token, auditLog, fpKey, poll, filepath.Join(dir, "state"), pass, edge, apiKey, strings.TrimPrefix(backend.URL, "http://")))
	runBinary(t, "ca", "init", "--config", cfg)
	caFile := filepath.Join(dir, "ca.crt")
	runBinary(t, "ca", "bundle", "--config", cfg, "--out", caFile)
	p := startProcess(t, "run", "--config", cfg)
	waitHTTP(t, "http://"+admin+"/livez", p)
	client := caClient(t, caFile, edge)
	url := "https://localhost" + edge[strings.LastIndex(edge, ":"):] + "/"

	// Continuous traffic until the rotations are done.
	var failures, total atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 3; w++ {
		wg.Go(func() {
			for i := 0; i < 5000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				total.Add(1)
				resp, err := client.Get(url)
				if err != nil {
					failures.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failures.Add(1)
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	within := func(what string, ok func() bool) {
		t.Helper()
		start := time.Now()
		for !ok() {
			if time.Since(start) > 2*poll+time.Second { // two polls, plus slack for a loaded machine
				t.Fatalf("%s: the new value was not in use within two poll intervals (%s)", what, time.Since(start))
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("%s: in use after %s", what, time.Since(start).Round(time.Millisecond))
	}
	adminStatus := func(tok string) int {
		req, _ := http.NewRequest("GET", "http://"+admin+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	inPlace := func(path, value string) {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(value + "\n")
		f.Close()
	}
	byRename := func(path, value string) {
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(value+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}

	within("initial header secret", func() bool { return seenKey.Load() == "api-key-one" })
	inPlace(apiKey, "api-key-two")
	within("header secret, in place", func() bool { return seenKey.Load() == "api-key-two" })
	byRename(apiKey, "api-key-three")
	within("header secret, by rename", func() bool { return seenKey.Load() == "api-key-three" })

	if got := adminStatus("admin-token-one-0123456789"); got != http.StatusOK {
		t.Fatalf("admin token: status %d before rotation", got)
	}
	inPlace(token, "admin-token-two-0123456789")
	within("admin token, in place", func() bool { return adminStatus("admin-token-two-0123456789") == http.StatusOK })
	if got := adminStatus("admin-token-one-0123456789"); got != http.StatusUnauthorized {
		t.Errorf("the old admin token still works: %d", got)
	}
	byRename(token, "admin-token-three-0123456789")
	within("admin token, by rename", func() bool { return adminStatus("admin-token-three-0123456789") == http.StatusOK })

	// Re-sealing derives a key with argon2id (64 MiB, 3 passes): slow under
	// the race detector on a busy machine, so these waits are longer.
	resealed := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(90 * time.Second); strings.Count(p.stdout.String(), "re-sealed under the new passphrase") < n; {
			if time.Now().After(deadline) {
				t.Fatalf("passphrase rotation %d was not applied:\n%s", n, p.stdout)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	inPlace(pass, "second passphrase, long enough")
	resealed(1)
	byRename(pass, "third passphrase, long enough")
	resealed(2)

	close(stop)
	wg.Wait()
	t.Logf("%d requests during the rotations, %d failed", total.Load(), failures.Load())
	if failures.Load() != 0 {
		t.Errorf("%d of %d requests failed during secret rotations", failures.Load(), total.Load())
	}

	// The audit log has a reload per rotation, and its chain verifies.
	auditText, err := os.ReadFile(auditLog)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"api_key", "admin_token", "ca_passphrase"} {
		if n := strings.Count(string(auditText), `"subject":"`+name); n < 3 {
			t.Errorf("audit log has %d entries for %s, want its read and two rotations:\n%s", n, name, auditText)
		}
	}
	if code, out, errOut := runCLI(t, "audit", "verify", auditLog); code != 0 {
		t.Errorf("audit verify: %d %s %s", code, out, errOut)
	}

	// No secret value anywhere an operator or a scraper can read.
	metrics := func() string {
		req, _ := http.NewRequest("GET", "http://"+admin+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer admin-token-three-0123456789")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}()
	outputs := map[string]string{"stdout": p.stdout.String(), "stderr": p.stderr.String(), "metrics": metrics, "audit": string(auditText)}
	for _, secretValue := range []string{"api-key-one", "api-key-two", "api-key-three", "admin-token-one-0123456789", "admin-token-two-0123456789",
		"admin-token-three-0123456789", "first passphrase", "second passphrase", "third passphrase", "a fingerprint key"} {
		for where, text := range outputs {
			if strings.Contains(text, secretValue) {
				t.Errorf("%s holds the secret %q", where, secretValue)
			}
		}
	}
}
