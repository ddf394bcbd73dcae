package backup

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/drawbridge-proxy/drawbridge/pki/store"
)

// Archive is what a backup holds.
type Archive struct {
	Manifest Manifest
	// State holds the files of the state dir, sorted by name.
	State []File
	// Config is the configuration file; nil when none was archived.
	Config []byte
}

// File is one file of the state dir.
type File struct {
	// Name is the path relative to the state dir, slash-separated.
	Name string
	Data []byte
}

// Manifest describes an archive.
type Manifest struct {
	// Format is the payload format, 1.
	Format int `json:"format"`
	// Created is when the snapshot was taken.
	Created time.Time `json:"created"`
	// StateDir is where the state was backed up from.
	StateDir string `json:"state_dir"`
	// ConfigName is the base name of the archived configuration file;
	// empty when none was archived.
	ConfigName string `json:"config_name,omitempty"`
	// Files is the number of state files.
	Files int `json:"files"`
}

// Entry names inside the payload.
const (
	manifestEntry = "manifest.json"
	stateEntry    = "state/"
	configEntry   = "config"

	payloadFormat   = 1
	maxManifestSize = 64 << 10
	maxNameLen      = 1024
	maxDepth        = 32
	maxEntries      = 100_000
)

// Write seals a into w as an archive readable with passphrase. k is the
// key derivation; its zero value means store.DefaultKDF.
func Write(w io.Writer, a *Archive, passphrase []byte, k store.KDF) error {
	if k == (store.KDF{}) {
		k = store.DefaultKDF()
	}
	plain, err := encodePayload(a)
	if err != nil {
		return err
	}
	defer clear(plain)
	return seal(w, plain, passphrase, k)
}

// Read opens an archive from r and checks every entry. An error wraps
// ErrNotArchive, store.ErrWrongPassphrase, ErrCorrupt or ErrUnsafeEntry, except
// for I/O errors and an unsupported format version.
func Read(r io.Reader, passphrase []byte) (*Archive, error) {
	return read(r, passphrase, maxKDFMemoryKiB)
}

func read(r io.Reader, passphrase []byte, maxMemoryKiB uint32) (*Archive, error) {
	plain, err := unseal(r, passphrase, maxMemoryKiB)
	if err != nil {
		return nil, err
	}
	a, err := decodePayload(plain)
	if err != nil {
		clear(plain)
		return nil, err
	}
	return a, nil
}

func encodePayload(a *Archive) ([]byte, error) {
	m := a.Manifest
	m.Format = payloadFormat
	m.Files = len(a.State)
	mb, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, data []byte) error {
		if buf.Len()+len(data) > MaxSize {
			return fmt.Errorf("archive would exceed %d bytes", MaxSize)
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(data)), Mode: 0o600, ModTime: m.Created}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("archiving %s: %w", name, err)
		}
		_, err := tw.Write(data)
		return err
	}
	if err := add(manifestEntry, mb); err != nil {
		return nil, err
	}
	names := newNameSet()
	for _, f := range a.State {
		// Never write an archive that restore would refuse.
		if err := names.add(f.Name); err != nil {
			return nil, fmt.Errorf("archiving %s: %w", f.Name, err)
		}
		if err := add(stateEntry+f.Name, f.Data); err != nil {
			return nil, err
		}
	}
	if a.Config != nil {
		if err := add(configEntry, a.Config); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decodePayload parses the decrypted tar stream. Everything is checked
// here, before restore writes anything.
func decodePayload(plain []byte) (*Archive, error) {
	tr := tar.NewReader(bytes.NewReader(plain))
	// No entry can be larger than the plaintext that holds it; this bounds
	// the memory of sparse entries whose logical size exceeds their data.
	budget := int64(len(plain))
	a := &Archive{}
	names := newNameSet()
	var sawManifest, sawConfig bool
	for i := 0; ; i++ {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: payload: %w", ErrCorrupt, err)
		}
		if i >= maxEntries {
			return nil, fmt.Errorf("%w: more than %d entries", ErrUnsafeEntry, maxEntries)
		}
		if err := checkHeader(hdr, budget); err != nil {
			return nil, fmt.Errorf("%w: %q: %w", ErrUnsafeEntry, hdr.Name, err)
		}
		data := make([]byte, hdr.Size)
		if _, err := io.ReadFull(tr, data); err != nil {
			return nil, fmt.Errorf("%w: payload: %s: %w", ErrCorrupt, hdr.Name, err)
		}
		budget -= hdr.Size
		switch name := hdr.Name; {
		case i == 0:
			if name != manifestEntry {
				return nil, fmt.Errorf("%w: the first entry is %q, want %s", ErrCorrupt, name, manifestEntry)
			}
			if a.Manifest, err = parseManifest(data); err != nil {
				return nil, err
			}
			sawManifest = true
		case name == configEntry && !sawConfig:
			a.Config, sawConfig = data, true
		case strings.HasPrefix(name, stateEntry):
			rel := strings.TrimPrefix(name, stateEntry)
			if err := names.add(rel); err != nil {
				return nil, fmt.Errorf("%w: %q: %w", ErrUnsafeEntry, name, err)
			}
			a.State = append(a.State, File{Name: rel, Data: data})
		default:
			return nil, fmt.Errorf("%w: %q: unexpected entry (duplicate, or not manifest.json, config or state/...)", ErrUnsafeEntry, name)
		}
	}
	if !sawManifest {
		return nil, fmt.Errorf("%w: the payload holds no manifest", ErrCorrupt)
	}
	if a.Manifest.Files != len(a.State) {
		return nil, fmt.Errorf("%w: the manifest lists %d files, the payload holds %d", ErrCorrupt, a.Manifest.Files, len(a.State))
	}
	if sawConfig != (a.Manifest.ConfigName != "") {
		return nil, fmt.Errorf("%w: the manifest and the payload disagree on the configuration file", ErrCorrupt)
	}
	slices.SortFunc(a.State, func(x, y File) int { return strings.Compare(x.Name, y.Name) })
	return a, nil
}

// checkHeader accepts regular files of a sane size only.
func checkHeader(hdr *tar.Header, budget int64) error {
	if hdr.Typeflag != tar.TypeReg {
		return fmt.Errorf("type %s; only regular files are restored", typeName(hdr.Typeflag))
	}
	if hdr.Size < 0 || hdr.Size > budget {
		return fmt.Errorf("size %d is larger than the archive", hdr.Size)
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return errors.New("sparse file")
		}
	}
	return checkName(hdr.Name)
}

func typeName(t byte) string {
	switch t {
	case tar.TypeLink:
		return "hard link"
	case tar.TypeSymlink:
		return "symlink"
	case tar.TypeChar, tar.TypeBlock:
		return "device"
	case tar.TypeDir:
		return "directory"
	case tar.TypeFifo:
		return "fifo"
	}
	return fmt.Sprintf("%q", t)
}

// checkName accepts a relative, clean, slash-separated path that stays
// inside the directory it is joined to, on every operating system.
func checkName(name string) error {
	switch {
	case name == "":
		return errors.New("empty name")
	case len(name) > maxNameLen:
		return fmt.Errorf("name longer than %d bytes", maxNameLen)
	case !utf8.ValidString(name):
		return errors.New("name is not UTF-8")
	case path.IsAbs(name) || filepath.IsAbs(name):
		return errors.New("absolute path")
	case strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }):
		return errors.New("name holds a control character or a backslash")
	}
	parts := strings.Split(name, "/")
	if len(parts) > maxDepth {
		return fmt.Errorf("deeper than %d levels", maxDepth)
	}
	for _, p := range parts {
		switch p {
		case "..":
			return errors.New(`".." escapes the target directory`)
		case "", ".":
			return errors.New("empty or . path component")
		}
	}
	if !filepath.IsLocal(filepath.FromSlash(name)) {
		return errors.New("not a local path")
	}
	return nil
}

// nameSet refuses duplicates and a name that is both a file and a
// directory, which restore could not write without replacing one.
type nameSet struct {
	files, dirs map[string]bool
}

func newNameSet() *nameSet {
	return &nameSet{files: map[string]bool{}, dirs: map[string]bool{}}
}

func (s *nameSet) add(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if s.files[name] {
		return errors.New("duplicate name")
	}
	if s.dirs[name] {
		return errors.New("name is also a directory of another entry")
	}
	for i := range len(name) {
		if name[i] != '/' {
			continue
		}
		dir := name[:i]
		if s.files[dir] {
			return fmt.Errorf("%q is a file and a directory", dir)
		}
		s.dirs[dir] = true
	}
	s.files[name] = true
	return nil
}

func parseManifest(b []byte) (Manifest, error) {
	var m Manifest
	if len(b) > maxManifestSize {
		return m, fmt.Errorf("%w: manifest is %d bytes", ErrCorrupt, len(b))
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return m, fmt.Errorf("%w: manifest: %w", ErrCorrupt, err)
	}
	if m.Format != payloadFormat {
		return m, fmt.Errorf("payload format %d is not supported (this drawbridge reads %d): restore it with the drawbridge release that wrote it", m.Format, payloadFormat)
	}
	if m.Files < 0 {
		return m, fmt.Errorf("%w: manifest: files %d", ErrCorrupt, m.Files)
	}
	return m, nil
}
