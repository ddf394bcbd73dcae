package backup

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestCraftedEntriesRefused seals payloads that drawbridge never writes
// with the real format and passphrase, so the decryption succeeds and the
// entry checks behind it are what must refuse them. Restoring each leaves
// the target absent and its parent as it was.
func TestCraftedEntriesRefused(t *testing.T) {
	link := func(typ byte, name, target string) entry {
		return entry{hdr: tar.Header{Typeflag: typ, Name: name, Linkname: target, Mode: 0o777}}
	}
	dev := func(typ byte, name string) entry {
		return entry{hdr: tar.Header{Typeflag: typ, Name: name, Mode: 0o600, Devmajor: 1, Devminor: 3}}
	}
	keyring := reg("state/drawbridge/keyring.json", "{}")
	tests := []struct {
		name    string
		entries []entry // after a valid manifest for len(entries) files
		want    error
	}{
		{"dot-dot entry", []entry{keyring, reg("state/../escaped", "x")}, ErrUnsafeEntry},
		{"dot-dot at the top", []entry{keyring, reg("../escaped", "x")}, ErrUnsafeEntry},
		{"dot-dot inside", []entry{keyring, reg("state/drawbridge/../../escaped", "x")}, ErrUnsafeEntry},
		{"absolute path", []entry{keyring, reg("/tmp/escaped", "x")}, ErrUnsafeEntry},
		{"absolute under state", []entry{keyring, reg("state//tmp/escaped", "x")}, ErrUnsafeEntry},
		{"symlink", []entry{keyring, link(tar.TypeSymlink, "state/certificates", "/etc")}, ErrUnsafeEntry},
		{"symlink then file through it", []entry{link(tar.TypeSymlink, "state/drawbridge", "/tmp"), keyring}, ErrUnsafeEntry},
		{"hard link", []entry{keyring, link(tar.TypeLink, "state/passwd", "/etc/passwd")}, ErrUnsafeEntry},
		{"char device", []entry{keyring, dev(tar.TypeChar, "state/null")}, ErrUnsafeEntry},
		{"block device", []entry{keyring, dev(tar.TypeBlock, "state/sda")}, ErrUnsafeEntry},
		{"fifo", []entry{keyring, dev(tar.TypeFifo, "state/fifo")}, ErrUnsafeEntry},
		{"directory", []entry{keyring, {hdr: tar.Header{Typeflag: tar.TypeDir, Name: "state/d/", Mode: 0o700}}}, ErrUnsafeEntry},
		{"duplicate name", []entry{keyring, reg("state/drawbridge/keyring.json", "{}")}, ErrUnsafeEntry},
		{"file and directory", []entry{keyring, reg("state/drawbridge/keyring.json/x", "{}")}, ErrUnsafeEntry},
		{"backslash", []entry{keyring, reg(`state/..\..\escaped`, "x")}, ErrUnsafeEntry},
		{"dot component", []entry{keyring, reg("state/./x", "x")}, ErrUnsafeEntry},
		{"bare state", []entry{keyring, reg("state", "x")}, ErrUnsafeEntry},
		{"unknown top level", []entry{keyring, reg("etc/passwd", "x")}, ErrUnsafeEntry},
		{"second manifest", []entry{keyring, reg(manifestEntry, "{}")}, ErrUnsafeEntry},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := 0
			for _, e := range tc.entries {
				if e.hdr.Typeflag == tar.TypeReg && len(e.hdr.Name) > len(stateEntry) && e.hdr.Name[:len(stateEntry)] == stateEntry {
					n++
				}
			}
			plain := tarOf(t, append([]entry{manifestEntryFor(t, n)}, tc.entries...))
			data := craft(t, plain)
			if _, err := Read(bytes.NewReader(data), []byte(testPassphrase)); !errors.Is(err, tc.want) {
				t.Fatalf("Read: got %v, want %v", err, tc.want)
			}

			parent := t.TempDir()
			path := filepath.Join(t.TempDir(), "crafted.backup")
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			opts := RestoreOptions{StateDir: filepath.Join(parent, "state"), verify: noVerify}
			if _, err := RestoreFile(context.Background(), path, []byte(testPassphrase), opts, Deps{}); !errors.Is(err, tc.want) {
				t.Fatalf("RestoreFile: got %v, want %v", err, tc.want)
			}
			if got := listTree(t, parent); len(got) != 1 {
				t.Errorf("restore left %v behind", got)
			}
		})
	}
}

func TestPayloadStructureRefused(t *testing.T) {
	keyring := reg("state/drawbridge/keyring.json", "{}")
	tests := []struct {
		name    string
		entries []entry
	}{
		{"no manifest", []entry{keyring}},
		{"manifest not first", []entry{keyring, manifestEntryFor(t, 1)}},
		{"manifest counts wrong", []entry{manifestEntryFor(t, 2), keyring}},
		{"manifest unknown field", []entry{reg(manifestEntry, `{"format":1,"files":0,"extra":1}`)}},
		{"manifest format 2", []entry{reg(manifestEntry, `{"format":2,"files":0}`)}},
		{"config without its name", []entry{manifestEntryFor(t, 0), reg(configEntry, "x")}},
		{"not tar", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			plain := []byte("this is not a tar stream, but it is long enough to look like one maybe")
			if tc.entries != nil {
				plain = tarOf(t, tc.entries)
			}
			if _, err := Read(bytes.NewReader(craft(t, plain)), []byte(testPassphrase)); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"drawbridge/keyring.json", "certificates/local/spiffe_drawbridge.internal_api/x.crt", "last_clean.json", "a..b"} {
		if err := checkName(ok); err != nil {
			t.Errorf("checkName(%q) = %v, want ok", ok, err)
		}
	}
	for _, bad := range []string{"", "/abs", "a/../b", "..", "a/", "a//b", "./a", "a\\b", "a\x00b", "a\nb", string([]byte{0xff})} {
		if err := checkName(bad); err == nil {
			t.Errorf("checkName(%q) = nil, want an error", bad)
		}
	}
}

// TestRealStateNamesRoundTrip: every name a real state dir holds passes
// the checks (a backup that restore refuses would be worse than none).
func TestRealStateNamesRoundTrip(t *testing.T) {
	st := newLiveState(t)
	files, err := readTree(st.cfg.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	a := &Archive{State: files}
	got, err := Read(bytes.NewReader(sealArchive(t, a)), []byte(testPassphrase))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range got.State {
		names = append(names, f.Name)
	}
	var want []string
	for _, f := range files {
		want = append(want, f.Name)
	}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("names (-state dir +archive):\n%s", diff)
	}
	t.Logf("a state dir with two leaves: %d files, %v", len(names), names)
}
