package store

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/certmagic"
	"github.com/google/go-cmp/cmp"

	"github.com/drawbridge-proxy/drawbridge/pki/ca"
	"github.com/drawbridge-proxy/drawbridge/pki/layout"
	"github.com/drawbridge-proxy/drawbridge/pki/part"
	"github.com/drawbridge-proxy/drawbridge/pki/trust"
)

func TestSealRoundTrip(t *testing.T) {
	s, _, err := newKeyring([]byte(testPassphrase), testKDF.params())
	if err != nil {
		t.Fatal(err)
	}
	plain := generatedKeyPEM(t)
	sealed, err := s.seal("a.key", plain)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("PRIVATE KEY")) || !isSealed(sealed) {
		t.Fatalf("sealed value leaks plaintext or lacks the magic: %q", sealed)
	}
	got, err := s.open("a.key", sealed)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("open: got %q, %v", got, err)
	}
	if _, err := s.open("b.key", sealed); err == nil {
		t.Error("a sealed value opened under another name; the name must be bound as additional data")
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := s.open("a.key", sealed); err == nil {
		t.Error("a tampered sealed value opened")
	}
}

// TestStateDirHoldsNoPlaintextKey runs the CA and certmagic (root,
// intermediate, leaves, a rotation) and then greps every file in the state
// dir: no PEM private key, every .key file sealed, files 0600, dirs 0700.
func TestStateDirHoldsNoPlaintextKey(t *testing.T) {
	p := newTestPKI(t, newTestConfig(t), nil)
	p.manage(t, "api", "api.drawbridge.internal")
	p.manage(t, "web")
	if err := p.ca.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := p.mgr.Renew(context.Background()); err != nil {
		t.Fatal(err)
	}
	keyFiles := 0
	err := filepath.WalkDir(p.cfg.StateDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			if perm := info.Mode().Perm(); perm != 0o700 {
				t.Errorf("dir %s has mode %o, want 700", path, perm)
			}
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte("PRIVATE KEY")) {
			t.Errorf("%s holds a private key in clear", path)
		}
		if strings.HasSuffix(path, ".key") {
			keyFiles++
			if !isSealed(b) {
				t.Errorf("%s is not sealed", path)
			}
		}
		if strings.Contains(path, string(filepath.Separator)+"locks"+string(filepath.Separator)) {
			return nil // certmagic's transient lock files hold only a timestamp
		}
		if perm := info.Mode().Perm(); perm != 0o600 {
			t.Errorf("file %s has mode %o, want 600", path, perm)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// root + intermediate (the rotated-out ones are deleted) + 2 leaves.
	if keyFiles < 4 {
		t.Errorf("found %d key files, want at least 4 (CA keys and certmagic's leaf keys)", keyFiles)
	}
}

// dirSnapshot maps each file under dir to a hash of its content and mode.
func dirSnapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			out[path] = info.Mode().String()
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		out[path] = info.Mode().String() + " " + fmt.Sprintf("%x", sha256.Sum256(b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWrongPassphraseChangesNothing(t *testing.T) {
	cfg := newTestConfig(t)
	p := newTestPKI(t, cfg, nil)
	p.manage(t, "api")
	_ = p.mgr.Close()
	before := dirSnapshot(t, cfg.StateDir)

	_, err := OpenStorageKDF(context.Background(), cfg.StateDir, []byte("the wrong passphrase, long enough"), testKDF)
	if !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("wrong passphrase: got %v, want ErrWrongPassphrase", err)
	}
	if !strings.Contains(err.Error(), "passphrase_file") || !strings.Contains(err.Error(), "nothing was changed") {
		t.Errorf("error does not say what to do: %v", err)
	}
	if _, err := OpenStorageKDF(context.Background(), cfg.StateDir, []byte("short"), testKDF); err == nil {
		t.Error("short passphrase accepted")
	}
	if diff := cmp.Diff(before, dirSnapshot(t, cfg.StateDir)); diff != "" {
		t.Errorf("state dir changed after refused opens (-before +after):\n%s", diff)
	}

	// The right passphrase still opens it and finds the same root.
	st, err := OpenStorageKDF(context.Background(), cfg.StateDir, []byte(testPassphrase), testKDF)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := ca.Open(context.Background(), cfg.CA(), st, part.Deps{}, ca.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := trust.CertSHA256(ca.TrustBundle().Roots()[0]), trust.CertSHA256(p.ca.TrustBundle().Roots()[0]); got != want {
		t.Errorf("reopened CA root %s, want %s", got, want)
	}
}

func TestReadPassphrase(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	if _, err := ReadPassphrase(missing); err == nil || !strings.Contains(err.Error(), "create it") {
		t.Errorf("missing file: got %v, want an error saying to create it", err)
	}
	short := filepath.Join(dir, "short")
	_ = os.WriteFile(short, []byte("abc\n"), 0o600)
	if _, err := ReadPassphrase(short); err == nil || strings.Contains(err.Error(), "abc") {
		t.Errorf("short passphrase: got %v, want an error that does not echo it", err)
	}
	good := filepath.Join(dir, "good")
	_ = os.WriteFile(good, []byte(testPassphrase+"\r\n"), 0o600)
	if b, err := ReadPassphrase(good); err != nil || string(b) != testPassphrase {
		t.Errorf("got %q, %v; want the passphrase without the newline", b, err)
	}
}

func TestKeyringNotReplacedOverExistingState(t *testing.T) {
	cfg := newTestConfig(t)
	p := newTestPKI(t, cfg, nil)
	_ = p.mgr.Close()
	if err := os.Remove(filepath.Join(cfg.StateDir, filepath.FromSlash(layout.KeyringKey))); err != nil {
		t.Fatal(err)
	}
	before := dirSnapshot(t, cfg.StateDir)
	if _, err := OpenStorageKDF(context.Background(), cfg.StateDir, []byte(testPassphrase), testKDF); err == nil {
		t.Fatal("opened a state dir with data but no keyring")
	}
	if diff := cmp.Diff(before, dirSnapshot(t, cfg.StateDir)); diff != "" {
		t.Errorf("state dir changed (-before +after):\n%s", diff)
	}
}

func TestClearKeyRefused(t *testing.T) {
	cfg := newTestConfig(t)
	st, err := OpenStorageKDF(context.Background(), cfg.StateDir, []byte(testPassphrase), testKDF)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(cfg.StateDir, "x.key")
	if err := os.WriteFile(path, generatedKeyPEM(t), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Load(context.Background(), "x.key"); err == nil {
		t.Error("a private key in clear was loaded")
	}
}

func generatedKeyPEM(t *testing.T) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := certmagic.PEMEncodePrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
