package layout_test

import (
	"context"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/certmagic"

	"github.com/drawbridge-proxy/drawbridge/pki/layout"
)

var keys = map[string]string{
	"KeyringKey":       layout.KeyringKey,
	"ResealJournalKey": layout.ResealJournalKey,
	"CAStateKey":       layout.CAStateKey,
	"EnrollBundleKey":  layout.EnrollBundleKey,
}

var locks = map[string]string{
	"KeyringLock": layout.KeyringLock,
	"ResealLock":  layout.ResealLock,
	"StateLock":   layout.StateLock,
}

// Every key is a clean slash-separated path below drawbridge/, the tree a
// backup copies, and no two name the same file.
func TestKeysLieBelowTheDrawbridgeTree(t *testing.T) {
	seen := map[string]string{}
	for name, k := range keys {
		if !strings.HasPrefix(k, "drawbridge/") || path.Clean(k) != k || strings.Contains(k, `\`) {
			t.Errorf("%s = %q: want a clean slash-separated path below drawbridge/", name, k)
		}
		if strings.HasPrefix(k, layout.CAKeyPrefix) {
			t.Errorf("%s = %q lies below CAKeyPrefix, where only CA keys are", name, k)
		}
		if other, dup := seen[k]; dup {
			t.Errorf("%s and %s are both %q", name, other, k)
		}
		seen[k] = name
	}
	if !strings.HasPrefix(layout.CAKeyPrefix, "drawbridge/") || !strings.HasSuffix(layout.CAKeyPrefix, "/") {
		t.Errorf("CAKeyPrefix = %q: want a directory below drawbridge/", layout.CAKeyPrefix)
	}
}

// The keys are where certmagic's file storage puts them in a state dir,
// the CA's keys are what listing CAKeyPrefix finds, and the locks are
// distinct names certmagic can hold at once.
func TestLayoutInCertmagicStorage(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	fs := &certmagic.FileStorage{Path: dir}
	for name, k := range keys {
		if err := fs.Store(ctx, k, []byte(name)); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(k)))
		if err != nil || string(b) != name {
			t.Errorf("%s: got %q, %v at %s, want the stored value", name, b, err, k)
		}
	}
	caKey := layout.CAKeyPrefix + "root-1f.key"
	if err := fs.Store(ctx, caKey, []byte("key")); err != nil {
		t.Fatal(err)
	}
	listed, err := fs.List(ctx, strings.TrimSuffix(layout.CAKeyPrefix, "/"), true)
	if err != nil || len(listed) != 1 || listed[0] != caKey {
		t.Errorf("listing CAKeyPrefix: got %v, %v; want only %s", listed, err, caKey)
	}
	seen := map[string]bool{}
	for name, l := range locks {
		if seen[l] || strings.ContainsAny(l, `/\`) {
			t.Errorf("%s = %q: want a distinct name without a path separator", name, l)
		}
		seen[l] = true
		if err := fs.Lock(ctx, l); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	for _, l := range locks {
		if err := fs.Unlock(ctx, l); err != nil {
			t.Error(err)
		}
	}
}
