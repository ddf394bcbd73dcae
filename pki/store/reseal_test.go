package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/pki/ca"
	"github.com/drawbridge-proxy/drawbridge/pki/layout"
	"github.com/drawbridge-proxy/drawbridge/pki/part"
)

const newPassphrase = "a brand new passphrase, long enough"

// sealedFiles returns the content of every sealed file in dir.
func sealedFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	keys, err := sealedKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, k := range keys {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(k)))
		if err != nil {
			t.Fatal(err)
		}
		if isSealed(b) {
			out[k] = b
		}
	}
	return out
}

func TestResealRotatesThePassphrase(t *testing.T) {
	cfg := newTestConfig(t)
	p := newTestPKI(t, cfg, nil)
	api := p.manage(t, "api")
	before := sealedFiles(t, cfg.StateDir)
	if len(before) < 3 {
		t.Fatalf("want the root, intermediate and leaf keys sealed, got %d files", len(before))
	}
	ctx := context.Background()
	if err := p.storage.Reseal(ctx, []byte("short")); err == nil {
		t.Fatal("a short new passphrase was accepted")
	}
	if err := p.storage.Reseal(ctx, []byte(newPassphrase)); err != nil {
		t.Fatal(err)
	}
	after := sealedFiles(t, cfg.StateDir)
	for k, v := range before {
		if string(after[k]) == string(v) {
			t.Errorf("%s was not sealed again", k)
		}
	}
	// The running storage keeps working: renew the leaf (store + load).
	if err := p.mgr.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := p.mgr.Certificate(api); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenStorageKDF(ctx, cfg.StateDir, []byte(testPassphrase), testKDF); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("old passphrase after re-seal: %v, want ErrWrongPassphrase", err)
	}
	st, err := OpenStorageKDF(ctx, cfg.StateDir, []byte(newPassphrase), testKDF)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.Open(ctx, cfg.CA(), st, part.Deps{}, ca.OpenOptions{}); err != nil {
		t.Fatalf("CA under the new passphrase: %v", err)
	}
	// Re-sealing to the passphrase in use changes nothing.
	snap := dirSnapshot(t, cfg.StateDir)
	if err := st.Reseal(ctx, []byte(newPassphrase)); err != nil {
		t.Fatal(err)
	}
	if got := dirSnapshot(t, cfg.StateDir); len(got) != len(snap) {
		t.Error("re-sealing to the same passphrase changed the state dir")
	}
}

// TestInterruptedResealRecovers stops a re-seal after the journal and half
// of the values, then opens with either passphrase.
func TestInterruptedResealRecovers(t *testing.T) {
	for _, tc := range []struct {
		name, open string
	}{
		{"roll forward with the new passphrase", newPassphrase},
		{"roll back with the old passphrase", testPassphrase},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := newTestConfig(t)
			p := newTestPKI(t, cfg, nil)
			p.manage(t, "api")
			_ = p.mgr.Close()
			ctx := context.Background()
			interruptReseal(t, p.storage, []byte(newPassphrase))

			if _, err := OpenStorageKDF(ctx, cfg.StateDir, []byte("neither passphrase, but long enough"), testKDF); !errors.Is(err, ErrWrongPassphrase) {
				t.Fatalf("a third passphrase: %v, want ErrWrongPassphrase", err)
			}
			st, err := OpenStorageKDF(ctx, cfg.StateDir, []byte(tc.open), testKDF)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ca.Open(ctx, cfg.CA(), st, part.Deps{}, ca.OpenOptions{}); err != nil {
				t.Fatalf("CA after recovery: %v", err)
			}
			if _, err := os.Stat(filepath.Join(cfg.StateDir, filepath.FromSlash(layout.ResealJournalKey))); !os.IsNotExist(err) {
				t.Errorf("journal left after recovery: %v", err)
			}
			for k, v := range sealedFiles(t, cfg.StateDir) {
				if _, err := st.sealer.open(k, v); err != nil {
					t.Errorf("%s is not sealed under the passphrase opened with: %v", k, err)
				}
			}
		})
	}
}

// interruptReseal does what Reseal does up to re-sealing the first value,
// as a crash would leave it.
func interruptReseal(t *testing.T, s *SealedStorage, pass []byte) {
	t.Helper()
	ctx := context.Background()
	cur, _ := s.sealers()
	oldData, err := s.fs.Load(ctx, layout.KeyringKey)
	if err != nil {
		t.Fatal(err)
	}
	next, newData, err := newKeyring(pass, testKDF.params())
	if err != nil {
		t.Fatal(err)
	}
	j := resealJournal{Version: 1, Old: oldData, New: newData}
	j.OldKey, _ = next.seal(oldKeyName, cur.key)
	j.NewKey, _ = cur.seal(newKeyName, next.key)
	raw, _ := json.Marshal(j)
	if err := s.fs.Store(ctx, layout.ResealJournalKey, raw); err != nil {
		t.Fatal(err)
	}
	keys, _ := sealedKeys(s.fs.Path)
	n := 0
	for _, k := range keys {
		v, _ := s.fs.Load(ctx, k)
		if !isSealed(v) {
			continue
		}
		if err := resealOne(ctx, s.fs, k, next, cur); err != nil {
			t.Fatal(err)
		}
		if n++; n == 1 {
			return
		}
	}
}

// TestResealWhileStoring: keys stored while a re-seal runs all open with the
// new passphrase afterwards, whichever key each was sealed under first.
func TestResealWhileStoring(t *testing.T) {
	ctx := context.Background()
	for round := range 20 {
		dir := filepath.Join(t.TempDir(), "state")
		st, err := OpenStorageKDF(ctx, dir, []byte(testPassphrase), testKDF)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 20 { // values for the re-seal to convert
			if err := st.Store(ctx, fmt.Sprintf("certificates/old-%d.key", i), []byte("old")); err != nil {
				t.Fatal(err)
			}
		}
		stored := make([]int, 4)
		writers := make([]func(int) bool, len(stored))
		for w := range writers {
			writers[w] = func(i int) bool {
				if err := st.Store(ctx, fmt.Sprintf("certificates/w%d-%d.key", w, i), []byte("new")); err != nil {
					t.Error(err)
					return false
				}
				stored[w] = i + 1
				return true
			}
		}
		if err := resealDuring(ctx, st, newPassphrase, 2*time.Millisecond, writers...); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		reopened, err := OpenStorageKDF(ctx, dir, []byte(newPassphrase), testKDF)
		if err != nil {
			t.Fatal(err)
		}
		for w, n := range stored {
			for i := range n {
				key := fmt.Sprintf("certificates/w%d-%d.key", w, i)
				if _, err := reopened.Load(ctx, key); err != nil {
					t.Fatalf("round %d: %s, stored during the re-seal, does not open with the new passphrase: %v", round, key, err)
				}
			}
		}
	}
}

// TestResealBesideAnotherWriter: another process on the same state dir (a
// `cert issue --watch` helper) writing while this one re-seals does not make
// the re-seal fail on its half-written temporary files.
func TestResealBesideAnotherWriter(t *testing.T) {
	ctx := context.Background()
	for round := range 10 {
		dir := filepath.Join(t.TempDir(), "state")
		st, err := OpenStorageKDF(ctx, dir, []byte(testPassphrase), testKDF)
		if err != nil {
			t.Fatal(err)
		}
		other, err := OpenStorageKDF(ctx, dir, []byte(testPassphrase), testKDF)
		if err != nil {
			t.Fatal(err)
		}
		otherWrites := func(i int) bool {
			_ = other.Store(ctx, fmt.Sprintf("certificates/other-%d.key", i%50), make([]byte, 64<<10))
			return true
		}
		if err := resealDuring(ctx, st, newPassphrase, 5*time.Millisecond, otherWrites); err != nil {
			t.Fatalf("round %d: re-seal beside another writer: %v", round, err)
		}
	}
}

// resealDuring re-seals st with pass while each writer runs in a loop on a
// goroutine of its own, called with 0, 1, 2, ... until the re-seal is over
// or it returns false. The writers get a head start of warmup.
func resealDuring(ctx context.Context, st *SealedStorage, pass string, warmup time.Duration, writers ...func(i int) bool) error {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, write := range writers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if !write(i) {
					return
				}
			}
		})
	}
	time.Sleep(warmup)
	err := st.Reseal(ctx, []byte(pass))
	close(stop)
	wg.Wait()
	return err
}
