package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = dispatch(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestValidateCommand(t *testing.T) {
	good := writeFile(t, "good.yaml", `
listeners:
  edge:
    address: 127.0.0.1:8443
    routes: [{upstream: api}]
upstreams:
  api: {targets: ["127.0.0.1:8000"]}
`)
	code, out, errOut := runCLI(t, "validate", "--config", good)
	if code != 0 || !strings.Contains(out, "valid (1 listener(s), 1 route(s), 1 upstream(s))") {
		t.Errorf("good config: code %d, stdout %q, stderr %q", code, out, errOut)
	}

	bad := writeFile(t, "bad.yaml", `
listeners:
  edge:
    address: 127.0.0.1:8443
    routs: []
    routes: [{upstream: nope}]
upstreams:
  api: {targets: ["no-port"], balance: random}
`)
	code, _, errOut = runCLI(t, "validate", "--config", bad)
	if code != 1 {
		t.Errorf("bad config: exit %d, want 1", code)
	}
	for _, want := range []string{
		"4 problem(s)",
		`line 5: listeners.edge.routs: unknown key "routs"`,
		`line 6: listeners.edge.routes[0].upstream: unknown upstream "nope"`,
		`line 8: upstreams.api.targets[0]: "no-port" is not host:port`,
		`line 8: upstreams.api.balance: unknown policy "random"`,
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("validate output lacks %q:\n%s", want, errOut)
		}
	}
	if code, _, _ := runCLI(t, "validate"); code != 2 {
		t.Errorf("validate without --config: exit %d, want 2", code)
	}
	if code, _, errOut := runCLI(t, "validate", "--config", filepath.Join(t.TempDir(), "missing.yaml")); code != 1 || !strings.Contains(errOut, "no such file") {
		t.Errorf("missing file: exit %d, %q", code, errOut)
	}
}

func TestHealthcheckCommand(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer ok.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer failing.Close()
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	defer hanging.Close()

	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"2xx", []string{ok.URL}, 0, ""},
		{"5xx", []string{failing.URL}, 1, "503 Service Unavailable"},
		{"timeout", []string{"--timeout", "200ms", hanging.URL}, 1, "deadline exceeded"},
		{"refused", []string{"http://" + drawtest.FreeAddr(t)}, 1, "refused"},
		{"no URL", nil, 2, "exactly one URL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runCLI(t, append([]string{"healthcheck"}, tc.args...)...)
			if code != tc.wantCode || !strings.Contains(errOut, tc.wantErr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errOut, tc.wantCode, tc.wantErr)
			}
			if tc.wantCode == 1 && strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
				t.Errorf("reason is not one line: %q", errOut)
			}
		})
	}
}

func TestVersionAndHelp(t *testing.T) {
	code, out, _ := runCLI(t, "version")
	if code != 0 || !strings.Contains(out, "drawbridge dev (commit none, "+runtime.Version()) {
		t.Errorf("version: %d %q", code, out)
	}
	for name := range commands() {
		code, _, errOut := runCLI(t, name, "--help")
		if code != 0 || !strings.Contains(errOut, "Usage: drawbridge "+name) {
			t.Errorf("%s --help: exit %d, %q", name, code, errOut)
		}
	}
	if code, _, errOut := runCLI(t, "frobnicate"); code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d, %q", code, errOut)
	}
}
