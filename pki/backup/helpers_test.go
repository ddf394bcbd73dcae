package backup

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/pki"
	"github.com/drawbridge-proxy/drawbridge/pki/ca"
	"github.com/drawbridge-proxy/drawbridge/pki/cert"
	"github.com/drawbridge-proxy/drawbridge/pki/identity"
	"github.com/drawbridge-proxy/drawbridge/pki/part"
	"github.com/drawbridge-proxy/drawbridge/pki/store"
)

// testKDF is cheap so tests seal and open archives in microseconds;
// production uses store.DefaultKDF.
var testKDF = store.KDF{Time: 1, MemoryKiB: 8, Threads: 1}

const testPassphrase = "correct horse battery staple"

// liveState is a real PKI state dir: keyring, CA, and certmagic's storage
// holding leaves for two identities.
type liveState struct {
	cfg      pki.Config
	storage  *store.SealedStorage
	ca       *ca.CA
	mgr      *cert.Manager
	api, web identity.ID
}

// newLiveState creates a state dir in a temp dir, with the passphrase file
// beside it. Close the Manager (st.mgr) before wiping the directory.
func newLiveState(t testing.TB) *liveState {
	t.Helper()
	dir := t.TempDir()
	pf := filepath.Join(dir, "passphrase")
	if err := os.WriteFile(pf, []byte(testPassphrase+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := pki.Config{StateDir: filepath.Join(dir, "state"), PassphraseFile: pf}
	cfg.Defaults()
	ctx := context.Background()
	st, err := store.OpenStorage(ctx, cfg.StateDir, []byte(testPassphrase))
	if err != nil {
		t.Fatal(err)
	}
	authority, err := ca.Open(ctx, cfg.CA(), st, part.Deps{}, ca.OpenOptions{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := cert.NewManager(cfg.Manager(), ca.NewIssuer(authority), st, part.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mgr.Close() })
	s := &liveState{cfg: cfg, storage: st, ca: authority, mgr: mgr,
		api: identity.MustNew(cfg.TrustDomain, "api"), web: identity.MustNew(cfg.TrustDomain, "web")}
	if err := mgr.Manage(ctx, s.api, []string{"localhost"}); err != nil {
		t.Fatal(err)
	}
	if err := mgr.Manage(ctx, s.web, nil); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *liveState) cert(t testing.TB, id identity.ID) *tls.Certificate {
	t.Helper()
	c, err := s.mgr.Certificate(id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// stateFiles is a real state dir's content, made once per test binary:
// creating a CA derives a 64 MiB argon2id key, too slow to repeat.
var stateFiles = sync.OnceValues(func() ([]File, error) {
	dir, err := os.MkdirTemp("", "drawbridge-backup-test")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	state := filepath.Join(dir, "state")
	st, err := store.OpenStorage(ctx, state, []byte(testPassphrase))
	if err != nil {
		return nil, err
	}
	cfg := pki.Config{StateDir: state, PassphraseFile: "unused"}
	cfg.Defaults()
	if _, err := ca.Open(ctx, cfg.CA(), st, part.Deps{}, ca.OpenOptions{Create: true}); err != nil {
		return nil, err
	}
	return readTree(state)
})

// stateOnDisk writes a copy of stateFiles into a temp dir with its
// passphrase file: a real state dir for tests that only read it, without
// deriving a key to create one.
func stateOnDisk(t testing.TB) *liveState {
	t.Helper()
	dir := t.TempDir()
	pf := filepath.Join(dir, "passphrase")
	writeFile(t, pf, testPassphrase+"\n")
	cfg := pki.Config{StateDir: filepath.Join(dir, "state"), PassphraseFile: pf}
	cfg.Defaults()
	if err := writeTree(cfg.StateDir, realFiles(t), false); err != nil {
		t.Fatal(err)
	}
	return &liveState{cfg: cfg}
}

func realFiles(t testing.TB) []File {
	t.Helper()
	files, err := stateFiles()
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// sampleArchive holds a real state dir and a config file.
func sampleArchive(t testing.TB) *Archive {
	t.Helper()
	files := realFiles(t)
	return &Archive{
		Manifest: Manifest{Format: payloadFormat, Created: time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC), StateDir: "/var/lib/drawbridge/pki", ConfigName: "drawbridge.yaml", Files: len(files)},
		State:    files,
		Config:   []byte("listeners: {}\n"),
	}
}

func sealArchive(t testing.TB, a *Archive) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, a, []byte(testPassphrase), testKDF); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// entry is one crafted tar entry.
type entry struct {
	hdr  tar.Header
	data string
}

func reg(name, data string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o600, Size: int64(len(data))}, data: data}
}

// manifestEntryFor is a valid manifest for n state files and no config.
func manifestEntryFor(t testing.TB, n int) entry {
	t.Helper()
	b, err := json.Marshal(Manifest{Format: payloadFormat, Created: time.Now().UTC(), StateDir: "/x", Files: n})
	if err != nil {
		t.Fatal(err)
	}
	return reg(manifestEntry, string(b))
}

func tarOf(t testing.TB, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := e.hdr
		if err := tw.WriteHeader(&hdr); err != nil {
			t.Fatalf("crafting %q: %v", hdr.Name, err)
		}
		if _, err := tw.Write([]byte(e.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// craft seals a crafted payload with the real format, so the checks behind
// the decryption are what refuses it.
func craft(t testing.TB, plain []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := seal(&buf, plain, []byte(testPassphrase), testKDF); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// listTree returns every path under root with its mode and content, to
// show a restore changed nothing.
func listTree(t testing.TB, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		v := fi.Mode().String()
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			v += " " + string(b)
		}
		out[filepath.ToSlash(rel)] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// noVerify skips opening the staged state, for tests about the files.
func noVerify(context.Context, string, []byte) (*ca.Status, error) { return nil, nil }

func jsonLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
