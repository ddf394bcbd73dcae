package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTrustBundleCommand: the bundle written to a file is the CA's, the one
// `ca bundle` prints; with --watch a removed file comes back; the file
// healthcheck accepts it and refuses what is missing, empty, stale or expired.
func TestTrustBundleCommand(t *testing.T) {
	cfg := caConfig(t)
	if code, _, stderr := runCLI(t, "ca", "init", "--config", cfg); code != 0 {
		t.Fatalf("ca init: %d %s", code, stderr)
	}
	_, want, _ := runCLI(t, "ca", "bundle", "--config", cfg)
	out := filepath.Join(t.TempDir(), "trust", "ca.crt")
	if code, _, stderr := runCLI(t, "trust-bundle", "--config", cfg, "--out", out); code != 0 {
		t.Fatalf("trust-bundle: %d %s", code, stderr)
	}
	got, err := os.ReadFile(out)
	if err != nil || string(got) != want || !strings.Contains(want, "BEGIN CERTIFICATE") {
		t.Fatalf("bundle file %q (%v), want %q", got, err, want)
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", fi.Mode().Perm())
	}
	if code, _, stderr := runCLI(t, "healthcheck", "file://"+out); code != 0 {
		t.Errorf("healthcheck of the bundle: %d %s", code, stderr)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- dispatch(ctx, []string{"trust-bundle", "--config", cfg, "--out", out, "--watch"}, &bytes.Buffer{}, &bytes.Buffer{})
	}()
	time.Sleep(500 * time.Millisecond)
	if err := os.Remove(out); err != nil {
		t.Fatal(err)
	}
	waitFile(t, out, 15*time.Second)
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("trust-bundle --watch exited %d on cancel", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("trust-bundle --watch did not stop")
	}
}

func TestHealthcheckFile(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	text := filepath.Join(dir, "text")
	os.WriteFile(empty, nil, 0o644)
	os.WriteFile(text, []byte("ok\n"), 0o644)
	now := time.Now()
	for _, tc := range []struct {
		url    string
		maxAge time.Duration
		now    time.Time
		ok     bool
	}{
		{"file://" + text, 0, now, true},
		{"file://" + dir, time.Hour, now, true},
		{"file://" + text, time.Hour, now.Add(2 * time.Hour), false},
		{"file://" + empty, 0, now, false},
		{"file://" + filepath.Join(dir, "missing"), 0, now, false},
		{"file:relative", 0, now, false},
		{"file://host/x", 0, now, false},
	} {
		if err := probeFile(tc.url, tc.maxAge, tc.now); (err == nil) != tc.ok {
			t.Errorf("probeFile(%s, %v): %v, want ok=%v", tc.url, tc.maxAge, err, tc.ok)
		}
	}
	// A certificate must be valid now: take one the CA issues.
	cfg := caConfig(t)
	certs := filepath.Join(dir, "certs")
	if code, _, stderr := runCLI(t, "cert", "issue", "--config", cfg, "--name", "db", "--out", certs); code != 0 {
		t.Fatalf("cert issue: %d %s", code, stderr)
	}
	crt := "file://" + filepath.Join(certs, "tls.crt")
	if err := probeFile(crt, 0, now); err != nil {
		t.Errorf("a fresh certificate: %v", err)
	}
	if err := probeFile(crt, 0, now.Add(30*24*time.Hour)); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("a certificate a month on: %v, want expired", err)
	}
	if code, _, stderr := runCLI(t, "healthcheck", "--max-age", "1h", "http://127.0.0.1:1/"); code != 1 || !strings.Contains(stderr, "file://") {
		t.Errorf("--max-age on http: %d %s", code, stderr)
	}
}
