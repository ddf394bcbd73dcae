package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/caddyserver/certmagic"

	"github.com/drawbridge-proxy/drawbridge/pki/layout"
)

// SealedStorage is a certmagic.Storage on the file system that seals
// private keys at rest. Every value stored under a name ending in ".key",
// or whose content holds a PEM private key, is sealed; everything else
// (certificates, metadata, locks) is stored as is. So certmagic's own leaf
// and ACME account keys are sealed along with the CA keys.
//
// Files are 0600 and directories 0700 (certmagic.FileStorage does this).
type SealedStorage struct {
	fs *certmagic.FileStorage

	// writing is held shared by each Store from choosing its sealer until
	// its value is on disk, and exclusively by a re-seal while it switches
	// keys and converts values: no value sealed under the old key can land
	// after the re-seal listed the values, and no half-written one is read.
	writing sync.RWMutex

	mu     sync.RWMutex // guards the following fields
	sealer *sealer      // seals every Store
	prev   *sealer      // during a re-seal, also opens what the old key sealed; nil otherwise
}

var (
	_ certmagic.Storage   = (*SealedStorage)(nil)
	_ certmagic.TryLocker = (*SealedStorage)(nil)
)

// OpenStorage opens the sealed storage in dir with passphrase. On first use
// (dir missing or empty) it creates dir (0700) and a keyring for
// passphrase. Otherwise it checks passphrase against the keyring and
// returns an error wrapping ErrWrongPassphrase if it does not match; in
// every failure nothing in dir is changed.
func OpenStorage(ctx context.Context, dir string, passphrase []byte) (*SealedStorage, error) {
	return OpenStorageKDF(ctx, dir, passphrase, DefaultKDF())
}

// OpenStorageKDF is OpenStorage whose new keyring (on first use) derives
// its key with k; an existing keyring keeps the parameters it was made
// with. Cheaper parameters than DefaultKDF suit only state dirs that hold
// nothing worth guessing a passphrase for: tests make hundreds.
func OpenStorageKDF(ctx context.Context, dir string, passphrase []byte, k KDF) (*SealedStorage, error) {
	kdf := k.params()
	if len(passphrase) < MinPassphraseLength {
		return nil, fmt.Errorf("opening state dir %q: passphrase is shorter than %d bytes", dir, MinPassphraseLength)
	}
	fsto := &certmagic.FileStorage{Path: dir}
	data, err := fsto.Load(ctx, layout.KeyringKey)
	switch {
	case err == nil:
		return openExisting(ctx, fsto, passphrase, data)
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("opening state dir %q: reading keyring: %w", dir, err)
	}
	return createKeyring(ctx, fsto, passphrase, kdf)
}

// openExisting opens a state dir whose keyring is data.
func openExisting(ctx context.Context, fsto *certmagic.FileStorage, passphrase, data []byte) (*SealedStorage, error) {
	if journal, jerr := fsto.Load(ctx, layout.ResealJournalKey); jerr == nil {
		// A re-seal was interrupted: finish it, toward whichever
		// passphrase was given.
		return recoverReseal(ctx, fsto, passphrase, journal)
	}
	s, err := openKeyring(passphrase, data)
	if errors.Is(err, ErrWrongPassphrase) {
		return nil, fmt.Errorf("opening state dir %q: %w: the keys there were sealed with another passphrase; give the passphrase_file used when the CA was created (nothing was changed)", fsto.Path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("opening state dir %q: %w", fsto.Path, err)
	}
	return &SealedStorage{fs: fsto, sealer: s}, nil
}

// createKeyring makes the keyring of a new state dir. Processes sharing a
// volume (a gateway and its backup or trust-bundle helpers) often start
// together: without the lock each would write a keyring of its own salt,
// the last one would win, and keys sealed under the others could never be
// opened again. Under the lock, the first creates and the rest open it.
func createKeyring(ctx context.Context, fsto *certmagic.FileStorage, passphrase []byte, kdf kdfParams) (*SealedStorage, error) {
	dir := fsto.Path
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating state dir: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil { //nolint:gosec // G302: a directory needs its x bit; 0700 is owner only
		return nil, fmt.Errorf("securing state dir: %w", err)
	}
	if err := fsto.Lock(ctx, layout.KeyringLock); err != nil {
		return nil, fmt.Errorf("creating keyring in %q: %w", dir, err)
	}
	defer func() { _ = fsto.Unlock(context.WithoutCancel(ctx), layout.KeyringLock) }()
	if data, err := fsto.Load(ctx, layout.KeyringKey); err == nil {
		return openExisting(ctx, fsto, passphrase, data) // another process made it while we waited
	}
	if err := checkEmptyDir(dir); err != nil {
		return nil, err
	}
	s, data, err := newKeyring(passphrase, kdf)
	if err != nil {
		return nil, fmt.Errorf("creating keyring in %q: %w", dir, err)
	}
	if err := fsto.Store(ctx, layout.KeyringKey, data); err != nil {
		return nil, fmt.Errorf("creating keyring in %q: %w", dir, err)
	}
	return &SealedStorage{fs: fsto, sealer: s}, nil
}

// checkEmptyDir refuses to create a keyring over existing state: that would
// mean the keyring was lost, and a new passphrase must not silently take
// over a directory of keys it cannot open.
func checkEmptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("opening state dir %q: %w", dir, err)
	}
	for _, e := range entries {
		if e.Name() == "locks" {
			continue
		}
		return fmt.Errorf("opening state dir %q: it holds data (%s) but no keyring %s: restore the keyring from a backup, or point state_dir at an empty directory",
			dir, e.Name(), filepath.FromSlash(layout.KeyringKey))
	}
	return nil
}

// Path returns the state directory.
func (s *SealedStorage) Path() string { return s.fs.Path }

func needsSealing(key string, value []byte) bool {
	return strings.HasSuffix(key, ".key") || bytes.Contains(value, []byte("PRIVATE KEY-----"))
}

func (s *SealedStorage) sealers() (cur, prev *sealer) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.sealer, s.prev
}

// Store seals value if it is a private key, then stores it.
func (s *SealedStorage) Store(ctx context.Context, key string, value []byte) error {
	if needsSealing(key, value) {
		s.writing.RLock()
		defer s.writing.RUnlock()
		cur, _ := s.sealers()
		sealed, err := cur.seal(key, value)
		if err != nil {
			return err
		}
		value = sealed
	}
	return s.fs.Store(ctx, key, value)
}

// Load loads the value at key, opening it if sealed. A private key found
// in clear is refused: it was not written by drawbridge.
func (s *SealedStorage) Load(ctx context.Context, key string) ([]byte, error) {
	v, err := s.fs.Load(ctx, key)
	if err != nil {
		return nil, err
	}
	if isSealed(v) {
		cur, prev := s.sealers()
		plain, err := cur.open(key, v)
		if err != nil && prev != nil {
			return prev.open(key, v)
		}
		return plain, err
	}
	if needsSealing(key, v) {
		return nil, fmt.Errorf("loading %s: a private key stored in clear; delete it so it is issued again, sealed", key)
	}
	return v, nil
}

// Delete deletes key.
func (s *SealedStorage) Delete(ctx context.Context, key string) error { return s.fs.Delete(ctx, key) }

// Exists reports whether key exists.
func (s *SealedStorage) Exists(ctx context.Context, key string) bool { return s.fs.Exists(ctx, key) }

// List lists keys under prefix.
func (s *SealedStorage) List(ctx context.Context, prefix string, recursive bool) ([]string, error) {
	return s.fs.List(ctx, prefix, recursive)
}

// Stat describes key.
func (s *SealedStorage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	return s.fs.Stat(ctx, key)
}

// Lock takes the named lock.
func (s *SealedStorage) Lock(ctx context.Context, name string) error { return s.fs.Lock(ctx, name) }

// TryLock takes the named lock if it is free.
func (s *SealedStorage) TryLock(ctx context.Context, name string) (bool, error) {
	return s.fs.TryLock(ctx, name)
}

// Unlock releases the named lock.
func (s *SealedStorage) Unlock(ctx context.Context, name string) error { return s.fs.Unlock(ctx, name) }

// String describes the storage for logs.
func (s *SealedStorage) String() string { return "SealedStorage:" + s.fs.Path }
