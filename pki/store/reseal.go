package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/drawbridge-proxy/drawbridge/pki/layout"
)

// The re-seal journal (layout.ResealJournalKey) exists only while a
// re-seal runs. It holds the keyrings before and after, and each derived
// key sealed under the other, so whichever of the two passphrases the next
// start is given opens every value, whatever point a crash interrupted.
const (
	oldKeyName = "drawbridge/reseal/old-key"
	newKeyName = "drawbridge/reseal/new-key"
)

type resealJournal struct {
	Version int `json:"version"`
	// Old and New are the keyring files before and after.
	Old []byte `json:"old_keyring"`
	New []byte `json:"new_keyring"`
	// OldKey is the old derived key sealed under the new one; NewKey the
	// new derived key sealed under the old one.
	OldKey []byte `json:"old_key_sealed_under_new"`
	NewKey []byte `json:"new_key_sealed_under_old"`
}

// Reseal seals every private key in the state dir again under a key
// derived from passphrase, which from then on is the one that opens the
// state dir: the passphrase secret rotates without a restart. It fails,
// changing nothing, when passphrase is too short or the state dir was
// re-sealed by another process to a third passphrase. Resealing to the
// passphrase the keyring already has (this process's, or one another
// process on the same state dir re-sealed to first) only adopts it.
//
// A crash midway leaves a journal from which the next OpenStorage finishes
// the re-seal with either passphrase: the new one rolls forward, the old
// one rolls back. A value certmagic stores while the re-seal runs is
// sealed under the new key at once.
func (s *SealedStorage) Reseal(ctx context.Context, passphrase []byte) error {
	if len(passphrase) < MinPassphraseLength {
		return fmt.Errorf("re-sealing: the new passphrase is %d bytes, need at least %d", len(passphrase), MinPassphraseLength)
	}
	if err := s.fs.Lock(ctx, layout.ResealLock); err != nil {
		return fmt.Errorf("re-sealing: %w", err)
	}
	defer func() { _ = s.fs.Unlock(context.WithoutCancel(ctx), layout.ResealLock) }()

	cur, _ := s.sealers()
	oldData, err := s.fs.Load(ctx, layout.KeyringKey)
	if err != nil {
		return fmt.Errorf("re-sealing: reading keyring: %w", err)
	}
	var kf keyringFile
	if err := json.Unmarshal(oldData, &kf); err != nil {
		return fmt.Errorf("re-sealing: %w", err)
	}
	// Each argon2id derivation costs its 64 MiB: derive once per new
	// passphrase. The keyring on disk is still the one this process holds (a
	// cheap check) and derived from this passphrase: nothing to do. Still
	// ours, another passphrase: derive the new key, once, for the new
	// keyring below. Not ours: another process on the same state dir (the
	// CLI) saw the same secret change first and re-sealed; adopt its key
	// if the passphrase opens it.
	ours := checkKeyring(cur, oldData) == nil
	if ours && cur.derivedFrom(passphrase, kf.KDF.Salt) {
		return nil
	}
	if !ours {
		if already, err := openKeyring(passphrase, oldData); err == nil {
			s.setSealers(already, nil)
			return nil
		}
		return fmt.Errorf("re-sealing: the state dir's keyring matches neither the passphrase it was opened with nor the new one")
	}
	next, newData, err := newKeyring(passphrase, kf.KDF)
	if err != nil {
		return fmt.Errorf("re-sealing: %w", err)
	}
	j := resealJournal{Version: 1, Old: oldData, New: newData}
	if j.OldKey, err = next.seal(oldKeyName, cur.key); err != nil {
		return err
	}
	if j.NewKey, err = cur.seal(newKeyName, next.key); err != nil {
		return err
	}
	raw, err := json.Marshal(j)
	if err != nil {
		return err
	}
	if err := s.fs.Store(ctx, layout.ResealJournalKey, raw); err != nil {
		return fmt.Errorf("re-sealing: writing journal: %w", err)
	}
	// Stores wait while keys switch and values are converted: one sealed
	// under the old key after the walk listed the values would stay so.
	s.writing.Lock()
	defer s.writing.Unlock()
	s.setSealers(next, cur)
	if err := finishReseal(ctx, s.fs, next, cur, newData); err != nil {
		// The journal stays; the next start finishes the re-seal.
		return fmt.Errorf("re-sealing: %w", err)
	}
	s.setSealers(next, nil)
	return nil
}

func (s *SealedStorage) setSealers(cur, prev *sealer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sealer, s.prev = cur, prev
}

func checkKeyring(s *sealer, data []byte) error {
	var kf keyringFile
	if err := json.Unmarshal(data, &kf); err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	if plain, err := s.open(checkName, kf.Check); err != nil || string(plain) != checkPlain {
		return ErrWrongPassphrase
	}
	return nil
}

// finishReseal seals every sealed value under target (opening it with
// target or other), then commits the target keyring and drops the
// journal.
func finishReseal(ctx context.Context, fsto *certmagic.FileStorage, target, other *sealer, targetKeyring []byte) error {
	keys, err := sealedKeys(fsto.Path)
	if err != nil {
		return err
	}
	for _, key := range keys {
		if err := resealOne(ctx, fsto, key, target, other); err != nil {
			return err
		}
	}
	if err := fsto.Store(ctx, layout.KeyringKey, targetKeyring); err != nil {
		return fmt.Errorf("writing keyring: %w", err)
	}
	if err := fsto.Delete(ctx, layout.ResealJournalKey); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing journal: %w", err)
	}
	return nil
}

func resealOne(ctx context.Context, fsto *certmagic.FileStorage, key string, target, other *sealer) error {
	v, err := fsto.Load(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // deleted meanwhile (a replaced certificate)
	}
	if err != nil {
		return err
	}
	if !isSealed(v) {
		return nil
	}
	if plain, err := target.open(key, v); err == nil {
		clear(plain)
		return nil // sealed under the target already (stored during the re-seal)
	}
	plain, err := other.open(key, v)
	if err != nil {
		if vanishes(fsto.Filename(key)) {
			// Another process's write in progress: certmagic writes a
			// temporary file (sealed for its final name) and renames it.
			return nil
		}
		return err
	}
	defer clear(plain)
	sealed, err := target.seal(key, plain)
	if err != nil {
		return err
	}
	return fsto.Store(ctx, key, sealed)
}

// vanishes reports whether the file at name is gone within a moment.
func vanishes(name string) bool {
	for range 10 {
		if _, err := os.Stat(name); errors.Is(err, fs.ErrNotExist) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// sealedKeys lists the storage keys of every file under dir but the
// keyring, the journal and locks.
func sealedKeys(dir string) ([]string, error) {
	var keys []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			if rel == "locks" {
				return filepath.SkipDir
			}
			return nil
		}
		key := filepath.ToSlash(rel)
		if key == layout.KeyringKey || key == layout.ResealJournalKey || strings.HasSuffix(key, ".tmp") {
			return nil
		}
		keys = append(keys, key)
		return nil
	})
	return keys, err
}

// recoverReseal opens a state dir whose re-seal was interrupted: the
// passphrase opens either the keyring before or the one after, and the
// journal gives the other key, so every value opens. The re-seal is
// finished toward the passphrase given.
func recoverReseal(ctx context.Context, fsto *certmagic.FileStorage, passphrase, raw []byte) (*SealedStorage, error) {
	var j resealJournal
	if err := json.Unmarshal(raw, &j); err != nil {
		return nil, fmt.Errorf("opening state dir %q: re-seal journal: %w", fsto.Path, err)
	}
	var target, other *sealer
	targetKeyring := j.New
	if s, err := openKeyring(passphrase, j.New); err == nil {
		target = s
		key, err := s.open(oldKeyName, j.OldKey)
		if err != nil {
			return nil, fmt.Errorf("opening state dir %q: re-seal journal: %w", fsto.Path, err)
		}
		if other, err = sealerFromKey(key); err != nil {
			return nil, err
		}
	} else if s, err := openKeyring(passphrase, j.Old); err == nil {
		target, targetKeyring = s, j.Old
		key, err := s.open(newKeyName, j.NewKey)
		if err != nil {
			return nil, fmt.Errorf("opening state dir %q: re-seal journal: %w", fsto.Path, err)
		}
		if other, err = sealerFromKey(key); err != nil {
			return nil, err
		}
	} else {
		return nil, fmt.Errorf("opening state dir %q: %w: a re-seal was interrupted, and the passphrase is neither the old nor the new one (nothing was changed)", fsto.Path, ErrWrongPassphrase)
	}
	if err := finishReseal(ctx, fsto, target, other, targetKeyring); err != nil {
		return nil, fmt.Errorf("opening state dir %q: finishing an interrupted re-seal: %w", fsto.Path, err)
	}
	return &SealedStorage{fs: fsto, sealer: target}, nil
}
