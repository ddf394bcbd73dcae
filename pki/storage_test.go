package pki

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSealRoundTrip(t *testing.T) {
	s, _, err := newKeyring([]byte(testPassphrase), testKDF)
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
	p := newTestPKI(t, testConfig(t), nil)
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
	cfg := testConfig(t)
	p := newTestPKI(t, cfg, nil)
	p.manage(t, "api")
	_ = p.mgr.Close()
	before := dirSnapshot(t, cfg.StateDir)

	_, err := openStorage(context.Background(), cfg.StateDir, []byte("the wrong passphrase, long enough"), testKDF)
	if !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("wrong passphrase: got %v, want ErrWrongPassphrase", err)
	}
	if !strings.Contains(err.Error(), "passphrase_file") || !strings.Contains(err.Error(), "nothing was changed") {
		t.Errorf("error does not say what to do: %v", err)
	}
	if _, err := openStorage(context.Background(), cfg.StateDir, []byte("short"), testKDF); err == nil {
		t.Error("short passphrase accepted")
	}
	if diff := cmp.Diff(before, dirSnapshot(t, cfg.StateDir)); diff != "" {
		t.Errorf("state dir changed after refused opens (-before +after):\n%s", diff)
	}

	// The right passphrase still opens it and finds the same root.
	st, err := openStorage(context.Background(), cfg.StateDir, []byte(testPassphrase), testKDF)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := OpenCA(context.Background(), cfg, st, Deps{}, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := Fingerprint(ca.TrustBundle().Roots()[0]), Fingerprint(p.ca.TrustBundle().Roots()[0]); got != want {
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
	cfg := testConfig(t)
	p := newTestPKI(t, cfg, nil)
	_ = p.mgr.Close()
	if err := os.Remove(filepath.Join(cfg.StateDir, filepath.FromSlash(keyringName))); err != nil {
		t.Fatal(err)
	}
	before := dirSnapshot(t, cfg.StateDir)
	if _, err := openStorage(context.Background(), cfg.StateDir, []byte(testPassphrase), testKDF); err == nil {
		t.Fatal("opened a state dir with data but no keyring")
	}
	if diff := cmp.Diff(before, dirSnapshot(t, cfg.StateDir)); diff != "" {
		t.Errorf("state dir changed (-before +after):\n%s", diff)
	}
}

func TestClearKeyRefused(t *testing.T) {
	cfg := testConfig(t)
	st, err := openStorage(context.Background(), cfg.StateDir, []byte(testPassphrase), testKDF)
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

// TestOpenComposes runs Open twice on one state dir: the CA is created,
// then found again, with the default (production) key derivation.
func TestOpenComposes(t *testing.T) {
	cfg := testConfig(t)
	ctx := context.Background()
	p1, err := Open(ctx, cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	root := Fingerprint(p1.CA.TrustBundle().Roots()[0])
	_ = p1.Close()
	p2, err := Open(ctx, cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	if got := Fingerprint(p2.CA.TrustBundle().Roots()[0]); got != root {
		t.Errorf("reopened root %s, want %s", got, root)
	}
	if p2.Enroll == nil || p2.Manager == nil {
		t.Error("Open left the enrollment handler or the Manager nil")
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p2.Run(runCtx) }()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// TestConcurrentFirstOpen: processes sharing a new volume (a gateway and its
// helpers) open it at once; they must end with one keyring, so what each
// seals the others can open.
func TestConcurrentFirstOpen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	ctx := context.Background()
	const n = 6
	stores := make([]*SealedStorage, n)
	errs := make([]error, n)
	start := make(chan struct{})
	done := make(chan int)
	for i := range n {
		go func() {
			<-start
			stores[i], errs[i] = openStorage(ctx, dir, []byte(testPassphrase), testKDF)
			done <- i
		}()
	}
	close(start)
	for range n {
		<-done
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("opener %d: %v", i, err)
		}
		if err := stores[i].Store(ctx, fmt.Sprintf("x/%d.key", i), []byte(fmt.Sprintf("value %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	again, err := openStorage(ctx, dir, []byte(testPassphrase), testKDF)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		got, err := again.Load(ctx, fmt.Sprintf("x/%d.key", i))
		if err != nil || string(got) != fmt.Sprintf("value %d", i) {
			t.Errorf("value sealed by opener %d does not open under the state dir's keyring: %q, %v", i, got, err)
		}
	}
}

// generatedKeyPEM is a fresh private key in PEM, made for the test: no key
// material lives in the repository.
func generatedKeyPEM(t *testing.T) []byte {
	t.Helper()
	k, err := newKey()
	if err != nil {
		t.Fatal(err)
	}
	b, err := pemKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
