package main

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
)

// buildPlainBinary compiles drawbridge without the race detector, whose
// shadow memory would swamp what is measured.
var buildPlainBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "drawbridge-plain")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "drawbridge")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	return bin, nil
})

// procKiB reads a Vm* line (kB) of /proc/PID/status.
func procKiB(t *testing.T, pid int, field string) int {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	t.Fatalf("%s not in /proc/%d/status", field, pid)
	return 0
}

// TestMemoryWithAndWithoutPKI runs the real binary with a pki section (a
// CA of its own, its sealed state created at start: one argon2id
// derivation of 64 MiB) and without, serves a few requests through each,
// and compares their resident sets: the derivation's memory is released,
// so the steady RSS with a PKI stays near the one without, and the peak
// leaves room under the edge's compose mem_limit of 128m.
func TestMemoryWithAndWithoutPKI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary twice")
	}
	be := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(be.Close)
	measure := func(name, pkiSection, tlsLine string) (peak, steady int) {
		edge, admin := drawtest.FreeAddr(t), drawtest.FreeAddr(t)
		cfg := writeFile(t, name+".yaml", fmt.Sprintf(`
admin: {address: %q}
%s
listeners:
  edge:
    address: %q
%s
    routes: [{upstream: app}]
upstreams:
  app: {targets: [%q]}
`, admin, pkiSection, edge, tlsLine, strings.TrimPrefix(be.URL, "http://")))
		bin, err := buildPlainBinary()
		if err != nil {
			t.Fatal(err)
		}
		p := startBinary(t, bin, "run", "--config", cfg)
		waitHTTP(t, "http://"+admin+"/readyz", p)
		for range 50 {
			if resp, err := http.Get("http://" + admin + "/status.json"); err == nil {
				resp.Body.Close()
			}
		}
		time.Sleep(2 * time.Second)
		pid := p.cmd.Process.Pid
		return procKiB(t, pid, "VmHWM"), procKiB(t, pid, "VmRSS")
	}
	plainPeak, plain := measure("plain", "", "")
	pkiPeak, withPKI := measure("pki", pkiSection(t, ""), "    tls: {mode: server, names: [edge, localhost]}")
	t.Logf("steady RSS: %d KiB without pki, %d KiB with pki (%.2fx); peak %d KiB and %d KiB",
		plain, withPKI, float64(withPKI)/float64(plain), plainPeak, pkiPeak)
	if withPKI > plain+24*1024 {
		t.Errorf("steady RSS with pki %d KiB, without %d KiB: argon2id's 64 MiB were not released", withPKI, plain)
	}
	if pkiPeak > 112*1024 {
		t.Errorf("peak RSS with pki %d KiB: too close to the edge's mem_limit of 128m (two derivations at once?)", pkiPeak)
	}
}

// TestRestoreFitsTheEdgeMemoryLimit runs the real binary's backup and
// restore: a restore derives the archive's key and then the CA's, and the
// two argon2id work areas must not add up, since the e2e runs restore in
// the edge's container (mem_limit 128m; it was killed at 151 MB).
func TestRestoreFitsTheEdgeMemoryLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin, err := buildPlainBinary()
	if err != nil {
		t.Fatal(err)
	}
	cfg := caConfig(t)
	archive := filepath.Join(t.TempDir(), "ca.backup")
	for _, args := range [][]string{{"ca", "init", "--config", cfg}, {"backup", "--config", cfg, "--out", archive}} {
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", args[0], err, out)
		}
	}
	pass := strings.Split(strings.Split(string(mustRead(t, cfg)), "passphrase_file: ")[1], "\n")[0]
	pass, _ = strconv.Unquote(pass)
	cmd := exec.Command(bin, "restore", archive, "--state-dir", filepath.Join(t.TempDir(), "state"), "--passphrase-file", pass)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The peak is read from /proc while it runs: the rusage of a child of
	// this (large, -race) test process counts the parent's memory from
	// before the exec.
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	peakKiB := 0
	for running := true; running; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("restore: %v\n%s", err, out.String())
			}
			running = false
		case <-time.After(2 * time.Millisecond):
			if v, ok := vmHWM(cmd.Process.Pid); ok && v > peakKiB {
				peakKiB = v
			}
		}
	}
	t.Logf("restore peak RSS: %d KiB", peakKiB)
	if peakKiB > 112*1024 {
		t.Errorf("restore peak RSS %d KiB: too close to the edge's mem_limit of 128m (two derivations held at once?)", peakKiB)
	}
}

// vmHWM reads a running process's peak resident set (kB); false once it
// has exited.
func vmHWM(pid int) (int, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n, err == nil
		}
	}
	return 0, false
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
