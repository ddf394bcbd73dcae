package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/google/go-cmp/cmp"

	"github.com/drawbridge-proxy/drawbridge/pki/identity"
	"github.com/drawbridge-proxy/drawbridge/pki/layout"
)

func TestSnapshotStartsAgainWhenAFileChanges(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a"), "old a")
	writeFile(t, filepath.Join(dir, "sub", "b"), "b")
	var attempts []int
	files, err := snapshot(context.Background(), dir, func(attempt int) {
		attempts = append(attempts, attempt)
		if attempt == 1 { // a writer renews a certificate mid-copy
			writeFile(t, filepath.Join(dir, "a"), "new a")
			writeFile(t, filepath.Join(dir, "sub", "c"), "c")
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []File{{"a", []byte("new a")}, {"sub/b", []byte("b")}, {"sub/c", []byte("c")}}
	if diff := cmp.Diff(want, files); diff != "" {
		t.Errorf("snapshot (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{1, 2}, attempts); diff != "" {
		t.Errorf("attempts (-want +got):\n%s", diff)
	}
}

func TestSnapshotGivesUpOnAStateThatKeepsChanging(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a"), "0")
	_, err := snapshot(context.Background(), dir, func(attempt int) {
		writeFile(t, filepath.Join(dir, "a"), fmt.Sprint(attempt))
	})
	if err == nil || !strings.Contains(err.Error(), "changed during each of 5 attempts") {
		t.Fatalf("got %v", err)
	}
}

func TestSnapshotLeavesOutLocksAndRefusesLinks(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "drawbridge", "keyring.json"), "{}")
	writeFile(t, filepath.Join(dir, "locks", "drawbridge-ca-state.lock"), "{}")
	files, err := snapshot(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || files[0].Name != "drawbridge/keyring.json" {
		t.Errorf("got %v, want only the keyring", files)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "drawbridge", "link")); err != nil {
		t.Fatal(err)
	}
	if _, err := snapshot(context.Background(), dir, nil); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("a symlink in the state dir: got %v", err)
	}
}

func testBacker(t *testing.T, st *liveState, cfg Config, deps Deps) *Backer {
	t.Helper()
	cfg.StateDir, cfg.PassphraseFile, cfg.KDF = st.cfg.StateDir, st.cfg.PassphraseFile, testKDF
	b, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBackupHoldsTheLocks: the copy is made while the CA's state lock and
// the re-seal lock are held, so neither the CA state nor the sealing of
// the keys can change under it; both are released after.
func TestBackupHoldsTheLocks(t *testing.T) {
	st := stateOnDisk(t)
	locks := []string{layout.StateLock, layout.ResealLock}
	held := map[string]bool{}
	deps := Deps{betweenPasses: func(int) {
		for _, l := range locks {
			_, err := os.Stat(filepath.Join(st.cfg.StateDir, "locks", l+".lock"))
			held[l] = err == nil
		}
	}}
	out := filepath.Join(t.TempDir(), "b.backup")
	if err := testBacker(t, st, Config{}, deps).Backup(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	for _, l := range locks {
		if !held[l] {
			t.Errorf("lock %s was not held during the copy", l)
		}
		if _, err := os.Stat(filepath.Join(st.cfg.StateDir, "locks", l+".lock")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("lock %s is still held after the backup: %v", l, err)
		}
	}
}

// TestBackupWaitsForAReseal: while another process re-seals the state dir
// (it holds the re-seal lock), a backup waits rather than copy half-resealed
// keys; here it gives up when its context ends.
func TestBackupWaitsForAReseal(t *testing.T) {
	st := stateOnDisk(t)
	fsto := &certmagic.FileStorage{Path: st.cfg.StateDir}
	ctx := context.Background()
	if err := fsto.Lock(ctx, layout.ResealLock); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = fsto.Unlock(ctx, layout.ResealLock) }()
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	outDir := t.TempDir()
	err := testBacker(t, st, Config{}, Deps{}).Backup(short, filepath.Join(outDir, "b.backup"))
	if err == nil || !strings.Contains(err.Error(), "waiting for the "+layout.ResealLock+" lock") {
		t.Fatalf("got %v", err)
	}
	if got := listTree(t, outDir); len(got) != 1 {
		t.Errorf("a backup that gave up left %v", got)
	}
}

// TestBackupRefusesAnInterruptedReseal: opening such a state dir would
// finish the re-seal, a write that is the gateway's to make.
func TestBackupRefusesAnInterruptedReseal(t *testing.T) {
	st := stateOnDisk(t)
	writeFile(t, filepath.Join(st.cfg.StateDir, filepath.FromSlash(layout.ResealJournalKey)), "{}")
	before := listTree(t, st.cfg.StateDir)
	err := testBacker(t, st, Config{}, Deps{}).Backup(context.Background(), filepath.Join(t.TempDir(), "b.backup"))
	if err == nil || !strings.Contains(err.Error(), "re-seal under a new passphrase was interrupted") {
		t.Fatalf("got %v", err)
	}
	after := listTree(t, st.cfg.StateDir)
	delete(after, "locks") // the lock directory the attempt created
	delete(before, "locks")
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("the refused backup changed the state dir (-before +after):\n%s", diff)
	}
}

// TestBackupOfALiveStateDir backs up while certificates are being issued
// into the state dir; the archive restores to a state that opens, with
// every leaf complete (certificate, key and metadata).
func TestBackupOfALiveStateDir(t *testing.T) {
	st := newLiveState(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var issued atomic.Int32
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil && i < 200; i++ {
			id := identity.MustNew(st.cfg.TrustDomain, fmt.Sprintf("svc-%d", i))
			if err := st.mgr.Manage(ctx, id, nil); err != nil && ctx.Err() == nil {
				t.Errorf("issuing %s: %v", id, err)
				return
			}
			issued.Add(1)
			// A renewal now and then, as in a gateway; a state dir written
			// without pause never holds still for two passes.
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	for issued.Load() < 3 {
		time.Sleep(10 * time.Millisecond) // issuance is under way
	}
	var passes atomic.Int32
	b := testBacker(t, st, Config{}, Deps{betweenPasses: func(int) { passes.Add(1) }})
	out := filepath.Join(t.TempDir(), "live.backup")
	err := b.Backup(ctx, out)
	cancel()
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "state")
	res, err := RestoreFile(context.Background(), out, []byte(testPassphrase), RestoreOptions{StateDir: dir}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	crts, err := filepath.Glob(filepath.Join(dir, "certificates", "*", "*", "*.crt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, crt := range crts {
		base := strings.TrimSuffix(crt, ".crt")
		for _, ext := range []string{".key", ".json"} {
			if _, err := os.Stat(base + ext); err != nil {
				t.Errorf("%s without its %s", filepath.Base(crt), ext)
			}
		}
	}
	t.Logf("%d files, %d leaves, %d copy attempts, %d leaves issued in all", res.Manifest.Files, len(crts), passes.Load(), issued.Load())
}

func TestBackupRefusals(t *testing.T) {
	st := stateOnDisk(t)
	other := filepath.Join(t.TempDir(), "other-passphrase")
	writeFile(t, other, "a passphrase the CA was never sealed with")
	empty := filepath.Join(t.TempDir(), "empty")
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"another passphrase", Config{StateDir: st.cfg.StateDir, PassphraseFile: other}, "wrong passphrase"},
		{"missing passphrase file", Config{StateDir: st.cfg.StateDir, PassphraseFile: other + ".missing"}, "does not exist"},
		{"no keyring", Config{StateDir: empty, PassphraseFile: st.cfg.PassphraseFile}, "no keyring"},
		{"missing config file", Config{StateDir: st.cfg.StateDir, PassphraseFile: st.cfg.PassphraseFile, ConfigFile: other + ".yaml"}, "reading config file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.KDF = testKDF
			var events []AuditEvent
			b, err := New(cfg, Deps{Audit: func(_ context.Context, e AuditEvent) { events = append(events, e) }})
			if err != nil {
				t.Fatal(err)
			}
			outDir := t.TempDir()
			out := filepath.Join(outDir, "x.backup")
			err = b.Backup(context.Background(), out)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
			if got := listTree(t, outDir); len(got) != 1 {
				t.Errorf("a failed backup left %v", got)
			}
			if len(events) != 1 || events[0].Result != ResultFailure || events[0].Subject != out {
				t.Errorf("audit: %+v", events)
			}
		})
	}
	if _, err := os.Stat(empty); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("backing up a missing state dir created it: %v", err)
	}
}

func TestBackupReplacesOutAtomically(t *testing.T) {
	st := stateOnDisk(t)
	cfgFile := filepath.Join(t.TempDir(), "drawbridge.yaml")
	writeFile(t, cfgFile, "listeners: {}\n")
	dir := t.TempDir()
	out := filepath.Join(dir, "b.backup")
	writeFile(t, out, "yesterday's backup")
	if err := os.Chmod(out, 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	b := testBacker(t, st, Config{ConfigFile: cfgFile}, Deps{Logger: jsonLogger(&logs)})
	if err := b.Backup(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	tree := listTree(t, dir)
	if len(tree) != 2 {
		t.Errorf("directory holds %d entries, want the archive only: %v", len(tree)-1, tree)
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("archive is %v, want 0600", fi.Mode().Perm())
	}
	a, err := ReadFile(out, []byte(testPassphrase))
	if err != nil {
		t.Fatal(err)
	}
	if string(a.Config) != "listeners: {}\n" || a.Manifest.ConfigName != "drawbridge.yaml" || a.Manifest.StateDir != st.cfg.StateDir {
		t.Errorf("manifest %+v, config %q", a.Manifest, a.Config)
	}
	if !strings.Contains(logs.String(), `"msg":"backup written"`) || strings.Contains(logs.String(), testPassphrase) {
		t.Errorf("logs: %s", logs.String())
	}
}

func TestSnapshotFollowsASymlinkedStateDir(t *testing.T) {
	real := filepath.Join(t.TempDir(), "real")
	writeFile(t, filepath.Join(real, "drawbridge", "keyring.json"), "{}")
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	files, err := snapshot(context.Background(), link, nil)
	if err != nil || len(files) != 1 {
		t.Fatalf("got %v, %v; want the keyring", files, err)
	}
}
