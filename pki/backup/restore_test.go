package backup

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/drawbridge-proxy/drawbridge/pki/ca"
	"github.com/drawbridge-proxy/drawbridge/pki/layout"
	"github.com/drawbridge-proxy/drawbridge/pki/store"
)

// writeArchive seals a into a file and returns its path.
func writeArchive(t *testing.T, a *Archive) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "test.backup")
	if err := os.WriteFile(p, sealArchive(t, a), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// checkRestored compares dir with a's files and checks their modes.
func checkRestored(t *testing.T, dir string, a *Archive) {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case d.IsDir():
			if fi.Mode().Perm() != 0o700 {
				t.Errorf("directory %s is %v, want 0700", rel, fi.Mode().Perm())
			}
		case fi.Mode().IsRegular():
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("file %s is %v, want 0600", rel, fi.Mode().Perm())
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			got[filepath.ToSlash(rel)] = string(b)
		default:
			t.Errorf("%s is a %v", rel, fi.Mode())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, f := range a.State {
		want[f.Name] = string(f.Data)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("restored files (-archive +dir):\n%s", diff)
	}
}

func TestRestoreIntoAbsentAndEmptyDir(t *testing.T) {
	a := sampleArchive(t)
	path := writeArchive(t, a)
	for _, existing := range []bool{false, true} {
		name := map[bool]string{false: "absent", true: "empty"}[existing]
		t.Run(name, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "state")
			if existing {
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			cfgOut := filepath.Join(parent, "drawbridge.yaml")
			var events []AuditEvent
			deps := Deps{Audit: func(_ context.Context, e AuditEvent) { events = append(events, e) }}
			res, err := RestoreFile(context.Background(), path, []byte(testPassphrase), RestoreOptions{StateDir: dir, ConfigOut: cfgOut}, deps)
			if err != nil {
				t.Fatal(err)
			}
			checkRestored(t, dir, a)
			if res.CA == nil || len(res.CA.Roots) != 1 {
				t.Errorf("restore result describes CA %+v, want one root", res.CA)
			}
			b, err := os.ReadFile(cfgOut)
			if err != nil || string(b) != string(a.Config) {
				t.Errorf("config out: %q, %v; want %q", b, err, a.Config)
			}
			if fi, _ := os.Stat(cfgOut); fi.Mode().Perm() != 0o600 {
				t.Errorf("config out is %v, want 0600", fi.Mode().Perm())
			}
			if got := listTree(t, parent); len(got) != 2+len(listTree(t, dir)) {
				t.Errorf("parent holds more than the state dir and the config: %v", got)
			}
			want := []AuditEvent{{Name: EventRestore, Subject: path, Result: ResultSuccess}}
			if diff := cmp.Diff(want, events); diff != "" {
				t.Errorf("audit (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRestoreIntoNonEmptyDirRefused: nothing changes, not even an
// attempt's leftovers, and no key is derived for a target that is refused.
func TestRestoreIntoNonEmptyDirRefused(t *testing.T) {
	path := writeArchive(t, sampleArchive(t))
	parent := t.TempDir()
	dir := filepath.Join(parent, "state")
	writeFile(t, filepath.Join(dir, "drawbridge", "keyring.json"), "the current keyring")
	writeFile(t, filepath.Join(dir, "precious"), "the only copy")
	before := listTree(t, parent)

	var events []AuditEvent
	deps := Deps{Audit: func(_ context.Context, e AuditEvent) { events = append(events, e) }}
	_, err := RestoreFile(context.Background(), path, []byte("a wrong passphrase would show we derived a key"), RestoreOptions{StateDir: dir}, deps)
	if !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("got %v, want ErrNotEmpty", err)
	}
	for _, want := range []string{"drawbridge, precious", "move what is there away first"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if diff := cmp.Diff(before, listTree(t, parent)); diff != "" {
		t.Errorf("refused restore changed the target (-before +after):\n%s", diff)
	}
	if len(events) != 1 || events[0].Result != ResultFailure || !strings.Contains(events[0].Reason, "not empty") {
		t.Errorf("audit: %+v, want one failure saying not empty", events)
	}
}

func TestRestoreRefusals(t *testing.T) {
	a := sampleArchive(t)
	path := writeArchive(t, a)
	noConfig := *a
	noConfig.Config, noConfig.Manifest.ConfigName = nil, ""
	noConfigPath := writeArchive(t, &noConfig)
	noKeyring := *a
	noKeyring.State = noKeyring.State[:0:0]
	for _, f := range a.State {
		if f.Name != layout.KeyringKey {
			noKeyring.State = append(noKeyring.State, f)
		}
	}
	noKeyringPath := writeArchive(t, &noKeyring)

	tests := []struct {
		name    string
		archive string
		pass    string
		opts    func(parent string) RestoreOptions
		setup   func(t *testing.T, parent string)
		want    string
	}{
		{"wrong passphrase", path, "another passphrase of enough length", func(p string) RestoreOptions {
			return RestoreOptions{StateDir: filepath.Join(p, "state")}
		}, nil, "wrong passphrase"},
		{"state dir is a file", path, testPassphrase, func(p string) RestoreOptions {
			return RestoreOptions{StateDir: filepath.Join(p, "state")}
		}, func(t *testing.T, p string) { writeFile(t, filepath.Join(p, "state"), "x") }, "not a directory"},
		{"parent missing", path, testPassphrase, func(p string) RestoreOptions {
			return RestoreOptions{StateDir: filepath.Join(p, "missing", "state")}
		}, nil, "parent directory does not exist"},
		{"config out exists", path, testPassphrase, func(p string) RestoreOptions {
			return RestoreOptions{StateDir: filepath.Join(p, "state"), ConfigOut: filepath.Join(p, "drawbridge.yaml")}
		}, func(t *testing.T, p string) { writeFile(t, filepath.Join(p, "drawbridge.yaml"), "mine") }, "never overwrites"},
		{"no config in archive", noConfigPath, testPassphrase, func(p string) RestoreOptions {
			return RestoreOptions{StateDir: filepath.Join(p, "state"), ConfigOut: filepath.Join(p, "drawbridge.yaml")}
		}, nil, "holds no configuration file"},
		{"no keyring in archive", noKeyringPath, testPassphrase, func(p string) RestoreOptions {
			return RestoreOptions{StateDir: filepath.Join(p, "state")}
		}, nil, "holds no keyring"},
		{"not an archive", "", testPassphrase, func(p string) RestoreOptions {
			return RestoreOptions{StateDir: filepath.Join(p, "state")}
		}, nil, ErrNotArchive.Error()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			if tc.setup != nil {
				tc.setup(t, parent)
			}
			archive := tc.archive
			if archive == "" {
				archive = filepath.Join(t.TempDir(), "notes.txt")
				writeFile(t, archive, "some notes, not a backup")
			}
			before := listTree(t, parent)
			_, err := RestoreFile(context.Background(), archive, []byte(tc.pass), tc.opts(parent), Deps{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
			if diff := cmp.Diff(before, listTree(t, parent)); diff != "" {
				t.Errorf("refused restore changed the target (-before +after):\n%s", diff)
			}
		})
	}
}

// TestRestoreFailureLeavesNothing: when the staged state does not open
// (here, the verification fails), neither the state nor the config
// appears, in both staging modes.
func TestRestoreFailureLeavesNothing(t *testing.T) {
	a := sampleArchive(t)
	failing := func(context.Context, string, []byte) (*ca.Status, error) {
		return nil, errors.New("the CA does not open")
	}
	for _, existing := range []bool{false, true} {
		parent := t.TempDir()
		dir := filepath.Join(parent, "state")
		if existing {
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
		}
		before := listTree(t, parent)
		opts := RestoreOptions{StateDir: dir, ConfigOut: filepath.Join(parent, "drawbridge.yaml"), verify: failing}
		if _, err := Restore(context.Background(), a, []byte(testPassphrase), opts); err == nil || !strings.Contains(err.Error(), "does not open") {
			t.Fatalf("existing=%v: got %v", existing, err)
		}
		if diff := cmp.Diff(before, listTree(t, parent)); diff != "" {
			t.Errorf("existing=%v: failed restore left (-before +after):\n%s", existing, diff)
		}
	}
}

// TestRestoreVerifiesWithThePassphrase: the staged state is opened with
// the passphrase given; a state sealed with another passphrase (an archive
// re-sealed by someone with a different passphrase) is not published.
func TestRestoreVerifiesWithThePassphrase(t *testing.T) {
	a := sampleArchive(t)
	parent := t.TempDir()
	dir := filepath.Join(parent, "state")
	other := []byte("a different passphrase, long enough")
	_, err := Restore(context.Background(), a, other, RestoreOptions{StateDir: dir})
	if !errors.Is(err, store.ErrWrongPassphrase) {
		t.Fatalf("got %v, want the keyring's ErrWrongPassphrase", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("state dir exists after a refused restore: %v", err)
	}
}

// TestMoveUpStopsOnIntruder: in an existing directory, something written
// there between the check and the publication stops the publication.
func TestMoveUpStopsOnIntruder(t *testing.T) {
	a := sampleArchive(t)
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	tgt, err := planTarget(RestoreOptions{StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	staging, err := tgt.stage(a.State)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "intruder"), "x")
	if err := tgt.moveUp(staging); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("got %v, want ErrNotEmpty", err)
	}
	checkRestored(t, staging, a) // untouched, for the caller to remove
	if err := os.Remove(filepath.Join(dir, "intruder")); err != nil {
		t.Fatal(err)
	}
	if err := tgt.moveUp(staging); err != nil {
		t.Fatal(err)
	}
	checkRestored(t, dir, a)
}
