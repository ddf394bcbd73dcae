package backup

import (
	"archive/tar"
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzRead feeds arbitrary files to the archive reader: it must never
// panic, and whatever it accepts must hold only names restore may write.
// Seeds are real archives, whole and cut.
func FuzzRead(f *testing.F) {
	small := smallArchive(&testing.T{})
	for _, seed := range [][]byte{small, small[:headerSize], small[:len(small)-1], []byte(magic), nil} {
		f.Add(seed)
	}
	if files, err := stateFiles(); err == nil {
		var buf bytes.Buffer
		if err := Write(&buf, &Archive{State: files}, []byte(testPassphrase), testKDF); err == nil {
			f.Add(buf.Bytes())
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// A mutated header may ask for 1 GiB of argon2id memory and 16
		// passes, which Read accepts; a fuzzer must not spend that (the
		// limits are tested in TestHeaderLimitsBeforeAllocation).
		if h, err := parseHeader(data[:min(len(data), headerSize)], 64); err == nil && h.kdf.Time > 2 {
			return
		}
		a, err := read(bytes.NewReader(data), []byte(testPassphrase), 64)
		if err != nil {
			return
		}
		for _, file := range a.State {
			if err := checkName(file.Name); err != nil {
				t.Fatalf("accepted %q: %v", file.Name, err)
			}
		}
	})
}

// FuzzRestore seals arbitrary payloads with the real format and passphrase,
// so the fuzzer reaches the tar parsing and the writes behind the
// decryption, and restores each into a fresh directory. It must never
// panic, never write outside the target, never leave a staging directory
// and never create anything but regular files and directories. Seeds are
// the payloads of real archives and of crafted hostile ones.
func FuzzRestore(f *testing.F) {
	t := &testing.T{}
	if plain, err := encodePayload(sampleArchive(t)); err == nil {
		f.Add(plain)
	}
	keyring := reg("state/drawbridge/keyring.json", "{}")
	for _, entries := range [][]entry{
		{manifestEntryFor(t, 1), keyring},
		{manifestEntryFor(t, 2), keyring, reg("state/../escaped", "x")},
		{manifestEntryFor(t, 2), keyring, reg("/tmp/escaped", "x")},
		{manifestEntryFor(t, 1), keyring, {hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "state/certificates", Linkname: "/tmp"}}},
		{manifestEntryFor(t, 2), keyring, reg("state/drawbridge/keyring.json/x", "x")},
	} {
		f.Add(tarOf(t, entries))
	}
	f.Fuzz(func(t *testing.T, plain []byte) {
		if len(plain) > 256<<10 {
			return
		}
		root := t.TempDir()
		parent := filepath.Join(root, "parent")
		outside := filepath.Join(root, "outside")
		writeFile(t, filepath.Join(outside, "sentinel"), "untouched")
		if err := os.Mkdir(parent, 0o700); err != nil {
			t.Fatal(err)
		}
		archive := filepath.Join(outside, "fuzz.backup")
		if err := os.WriteFile(archive, craft(t, plain), 0o600); err != nil {
			t.Fatal(err)
		}
		before := listTree(t, outside)

		opts := RestoreOptions{StateDir: filepath.Join(parent, "state"), ConfigOut: filepath.Join(parent, "config.yaml"), verify: noVerify, noSync: true}
		if _, err := RestoreFile(context.Background(), archive, []byte(testPassphrase), opts, Deps{}); err != nil &&
			strings.Contains(err.Error(), "holds no configuration file") {
			opts.ConfigOut = ""
			_, _ = RestoreFile(context.Background(), archive, []byte(testPassphrase), opts, Deps{})
		}

		entries, err := os.ReadDir(root)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 2 {
			t.Fatalf("root holds %v, want only parent and outside", entries)
		}
		if after := listTree(t, outside); len(after) != len(before) || after["sentinel"] != before["sentinel"] {
			t.Fatalf("outside changed: %v", after)
		}
		top, err := os.ReadDir(parent)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range top {
			if e.Name() != "state" && e.Name() != "config.yaml" {
				t.Fatalf("restore left %q beside the target", e.Name())
			}
		}
		err = filepath.WalkDir(parent, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && !d.Type().IsRegular() {
				t.Fatalf("restore created %s, a %v", p, d.Type())
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
