package certfiles

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

func TestParseOwner(t *testing.T) {
	if o, err := ParseOwner(""); o != nil || err != nil {
		t.Errorf(`ParseOwner(""): %v, %v; want nil, nil`, o, err)
	}
	if o, err := ParseOwner("999:0"); err != nil || *o != (Owner{UID: 999, GID: 0}) {
		t.Errorf(`ParseOwner("999:0"): %v, %v`, o, err)
	}
	for _, bad := range []string{"999", "postgres:postgres", "-1:0", "1:", ":1"} {
		if _, err := ParseOwner(bad); err == nil {
			t.Errorf("ParseOwner(%q) accepted", bad)
		}
	}
}

// TestBundleWriter: the bundle is written 0644 in a directory made for
// it, not rewritten while unchanged, and written again when the file is
// gone or the bundle changed.
func TestBundleWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "ca.crt")
	w := &BundleWriter{Path: path, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	check := func(want string) {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil || string(b) != want {
			t.Fatalf("%s: %q, %v; want %q", path, b, err, want)
		}
		if info, _ := os.Stat(path); info.Mode().Perm() != 0o644 {
			t.Errorf("mode %v, want 0644", info.Mode().Perm())
		}
	}
	if err := w.Write([]byte("one")); err != nil {
		t.Fatal(err)
	}
	check("one")
	if err := os.WriteFile(path, []byte("edited"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := w.Write([]byte("one")); err != nil {
		t.Fatal(err)
	}
	check("edited") // unchanged bundle, file there: left alone
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := w.Write([]byte("one")); err != nil {
		t.Fatal(err)
	}
	check("one")
	if err := w.Write([]byte("two")); err != nil {
		t.Fatal(err)
	}
	check("two")
}

func TestWriteFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tls.key")
	if err := WriteFile(path, []byte("k"), 0o640, nil); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o640 {
		t.Errorf("stat: %v, %v; want 0640", info, err)
	}
	if err := WriteFile(filepath.Join(t.TempDir(), "missing", "f"), nil, 0o644, nil); err == nil {
		t.Error("writing into a missing directory succeeded")
	}
}
