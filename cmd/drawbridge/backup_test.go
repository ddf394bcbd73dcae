package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/drawbridge-proxy/drawbridge/pki"
	"github.com/drawbridge-proxy/drawbridge/pki/ca"
	"github.com/drawbridge-proxy/drawbridge/pki/part"
	"github.com/drawbridge-proxy/drawbridge/pki/store"
)

const backupPassphrase = "a test passphrase, not a real one"

const minimalConfig = `
listeners:
  edge:
    address: 127.0.0.1:8443
    routes: [{upstream: api}]
upstreams:
  api: {targets: ["127.0.0.1:8000"]}
`

// pkiFixture is a real CA state dir and its passphrase file.
type pkiFixture struct {
	dir, stateDir, passFile string
}

func newPKIFixture(t *testing.T) pkiFixture {
	t.Helper()
	dir := t.TempDir()
	f := pkiFixture{dir: dir, stateDir: filepath.Join(dir, "state"), passFile: filepath.Join(dir, "ca_passphrase")}
	if err := os.WriteFile(f.passFile, []byte(backupPassphrase+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := store.OpenStorage(ctx, f.stateDir, []byte(backupPassphrase))
	if err != nil {
		t.Fatal(err)
	}
	cfg := pki.Config{StateDir: f.stateDir, PassphraseFile: f.passFile}
	cfg.Defaults()
	if _, err := ca.Open(ctx, cfg.CA(), st, part.Deps{}, ca.OpenOptions{Create: true}); err != nil {
		t.Fatal(err)
	}
	return f
}

// treeOf maps each file under dir (locks left out) to its content.
func treeOf(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if fi.IsDir() && rel == "locks" {
			return filepath.SkipDir
		}
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[filepath.ToSlash(rel)] = string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestBackupAndRestoreCommands runs both commands as an operator would:
// back up, restore into a new dir (state and config come back as they
// were), and the refusals with what they say.
func TestBackupAndRestoreCommands(t *testing.T) {
	f := newPKIFixture(t)
	cfgFile := writeFile(t, "drawbridge.yaml", minimalConfig)
	archive := filepath.Join(t.TempDir(), "ca.backup")
	auditLog := filepath.Join(t.TempDir(), "audit.jsonl")

	code, out, errOut := runCLI(t, "backup", "--config", cfgFile, "--state-dir", f.stateDir, "--passphrase-file", f.passFile, "--out", archive, "--audit-log", auditLog)
	if code != 0 {
		t.Fatalf("backup: exit %d, %s", code, errOut)
	}
	if !strings.Contains(out, `"msg":"backup written"`) {
		t.Errorf("backup logs lack the JSON line: %q", out)
	}
	if fi, err := os.Stat(archive); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("archive: %v, %v", fi, err)
	}

	restored := filepath.Join(t.TempDir(), "state")
	cfgOut := filepath.Join(t.TempDir(), "drawbridge.yaml")
	code, out, errOut = runCLI(t, "restore", archive, "--state-dir", restored, "--passphrase-file", f.passFile, "--config-out", cfgOut, "--audit-log", auditLog)
	if code != 0 {
		t.Fatalf("restore: exit %d, %s", code, errOut)
	}
	if !strings.Contains(out, `"msg":"restored"`) || !strings.Contains(out, `"root":"`) {
		t.Errorf("restore logs: %q", out)
	}
	if diff := cmp.Diff(treeOf(t, f.stateDir), treeOf(t, restored)); diff != "" {
		t.Errorf("restored state (-original +restored):\n%s", diff)
	}
	if b, _ := os.ReadFile(cfgOut); string(b) != minimalConfig {
		t.Errorf("restored config %q", b)
	}

	wrongPass := writeFile(t, "wrong", "another passphrase of enough length")
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  []string
	}{
		{"non-empty state dir", []string{"restore", archive, "--state-dir", restored, "--passphrase-file", f.passFile}, 1,
			[]string{"not empty", "move what is there away first"}},
		{"wrong passphrase", []string{"restore", archive, "--state-dir", filepath.Join(t.TempDir(), "s"), "--passphrase-file", wrongPass, "--audit-log", auditLog}, 1,
			[]string{"wrong passphrase", "give the passphrase file that was in use when the backup was made", "nothing was written"}},
		{"tampered", []string{"restore", flipped(t, archive), "--state-dir", filepath.Join(t.TempDir(), "s"), "--passphrase-file", f.passFile}, 1,
			[]string{"corrupt", "use another copy", "nothing was written"}},
		{"backup with another passphrase", []string{"backup", "--config", cfgFile, "--state-dir", f.stateDir, "--passphrase-file", wrongPass, "--out", filepath.Join(t.TempDir(), "x")}, 1,
			[]string{"wrong passphrase"}},
		{"restore without FILE", []string{"restore", "--state-dir", "/x", "--passphrase-file", f.passFile}, 2, []string{"exactly one archive"}},
		{"restore without --state-dir", []string{"restore", archive, "--passphrase-file", f.passFile}, 2, []string{"--state-dir DIR is required"}},
		{"restore without passphrase", []string{"restore", archive, "--state-dir", "/x"}, 2, []string{"--passphrase-file FILE is required"}},
		{"backup without --config", []string{"backup", "--out", "x"}, 2, []string{"--config FILE is required"}},
		{"--every without --dir", []string{"backup", "--config", cfgFile, "--every", "1h"}, 2, []string{"--every needs --dir"}},
		{"--out and --dir", []string{"backup", "--config", cfgFile, "--out", "x", "--dir", "y"}, 2, []string{"not both"}},
		{"no passphrase file anywhere", []string{"backup", "--config", cfgFile, "--state-dir", f.stateDir}, 1, []string{"pki.passphrase_file"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tc.args...)
			if code != tc.wantCode {
				t.Errorf("exit %d, want %d; stderr %q", code, tc.wantCode, errOut)
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(errOut, want) {
					t.Errorf("stderr %q lacks %q", errOut, want)
				}
			}
			if strings.Contains(out+errOut, backupPassphrase) {
				t.Error("the passphrase appears in the output")
			}
		})
	}
	if diff := cmp.Diff(treeOf(t, f.stateDir), treeOf(t, restored)); diff != "" {
		t.Errorf("the refused restores changed the state dir (-original +now):\n%s", diff)
	}

	// The audit log holds the three events, in an intact chain.
	if code, out, errOut := runCLI(t, "audit", "verify", auditLog); code != 0 || !strings.Contains(out, "chain intact: 3 entries") {
		t.Errorf("audit verify: exit %d, %q %q", code, out, errOut)
	}
	b, err := os.ReadFile(auditLog)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var e struct{ Event, Result, Actor, Subject, Reason string }
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatal(err)
		}
		if e.Subject != archive || e.Actor != "operator" {
			t.Errorf("audit entry %s", line)
		}
		got = append(got, e.Event+" "+e.Result)
		if e.Result == "failure" && !strings.Contains(e.Reason, "wrong passphrase") {
			t.Errorf("failure without its reason: %s", line)
		}
	}
	want := []string{"backup.create success", "backup.restore success", "backup.restore failure"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit events (-want +got):\n%s", diff)
	}
	if bytes.Contains(b, []byte(backupPassphrase)) {
		t.Error("the passphrase is in the audit log")
	}
}

func flipped(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x10
	return writeFile(t, "flipped.backup", string(b))
}

// TestBackupTakesPathsFromThePKISection: with state_dir and
// passphrase_file in the config file, no flag is needed beyond --config.
func TestBackupTakesPathsFromThePKISection(t *testing.T) {
	f := newPKIFixture(t)
	cfgFile := writeFile(t, "drawbridge.yaml", minimalConfig+"pki:\n  state_dir: "+f.stateDir+"\n  passphrase_file: "+f.passFile+"\n")
	dir := t.TempDir()
	code, _, errOut := runCLI(t, "backup", "--config", cfgFile, "--dir", dir, "--keep", "1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || !strings.HasPrefix(entries[0].Name(), "drawbridge-") {
		t.Errorf("backup dir holds %v, want one timestamped archive", entries)
	}
	restored := filepath.Join(t.TempDir(), "state")
	code, _, errOut = runCLI(t, "restore", filepath.Join(dir, entries[0].Name()), "--state-dir", restored, "--config", cfgFile)
	if code != 0 {
		t.Fatalf("restore with --config for the passphrase file: exit %d: %s", code, errOut)
	}
}

// TestBackupServiceStopsOnSIGTERM runs the real binary as a backup
// service: it backs up at once, then waits for the next run; SIGTERM ends it
// with exit 0.
func TestBackupServiceStopsOnSIGTERM(t *testing.T) {
	f := newPKIFixture(t)
	cfgFile := writeFile(t, "drawbridge.yaml", minimalConfig)
	dir := filepath.Join(t.TempDir(), "backups")
	p := startProcess(t, "backup", "--config", cfgFile, "--state-dir", f.stateDir, "--passphrase-file", f.passFile,
		"--dir", dir, "--every", "1h", "--keep", "3")
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(p.stdout.String(), `"msg":"backup written"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no backup within 60s; stdout %q stderr %q", p.stdout, p.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v; stderr %q", err, p.stderr)
		}
		p.done <- nil // for the cleanup's wait
	case <-time.After(10 * time.Second):
		t.Fatal("the backup service did not stop on SIGTERM")
	}
	if !strings.Contains(p.stdout.String(), `"msg":"scheduled backups stopped"`) {
		t.Errorf("logs: %s", p.stdout)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("backup dir holds %v, want one archive", entries)
	}
}

func TestParseInterspersed(t *testing.T) {
	fs := newFlagSet("x", "", &bytes.Buffer{})
	a := fs.String("a", "", "")
	rest, code := parseInterspersed(fs, []string{"one", "-a", "v", "two", "--", "-b"})
	if code != -1 || *a != "v" {
		t.Fatalf("code %d, a %q", code, *a)
	}
	if diff := cmp.Diff([]string{"one", "two", "-b"}, rest); diff != "" {
		t.Errorf("positional (-want +got):\n%s", diff)
	}
}
