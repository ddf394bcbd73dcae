package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteReplacesWithMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteBytes(path, Options{Mode: 0o640}, []byte("new")); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != "new" {
		t.Fatalf("got %q, %v, want %q", b, err, "new")
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o640 {
		t.Errorf("got mode %o, want 640", got)
	}
}

func TestWriteFailureLeavesTheOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "archive")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	_, err := Write(path, Options{Pattern: ".tmp-*"}, func(w io.Writer) error {
		_, _ = w.Write([]byte("part"))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want %v", err, boom)
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Errorf("got %q after a failed write, want %q", b, "old")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".tmp-*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestWriteCountsAndDefaultsTo0600(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	var prepared bool
	n, err := Write(path, Options{Prepare: func(*os.File) error { prepared = true; return nil }}, func(w io.Writer) error {
		_, err := io.WriteString(w, "12345")
		return err
	})
	if err != nil || n != 5 {
		t.Fatalf("got %d, %v, want 5 bytes", n, err)
	}
	if !prepared {
		t.Error("Prepare was not called")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("got mode %o, want 600", fi.Mode().Perm())
	}
}
