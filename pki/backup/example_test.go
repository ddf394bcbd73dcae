package backup_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/drawbridge-proxy/drawbridge/pki"
	"github.com/drawbridge-proxy/drawbridge/pki/backup"
	"github.com/drawbridge-proxy/drawbridge/pki/ca"
	"github.com/drawbridge-proxy/drawbridge/pki/part"
	"github.com/drawbridge-proxy/drawbridge/pki/store"
)

// Example backs up a CA's state dir, loses it, and restores it: the CA
// comes back with the same root.
func Example() {
	dir, _ := os.MkdirTemp("", "drawbridge-backup-example")
	defer os.RemoveAll(dir)
	passFile := filepath.Join(dir, "ca-passphrase")
	_ = os.WriteFile(passFile, []byte("an example passphrase, not a real one\n"), 0o600)
	stateDir := filepath.Join(dir, "state")
	ctx := context.Background()

	// A CA, as the gateway creates it on first start.
	pass, err := store.ReadPassphrase(passFile)
	if err != nil {
		log.Fatal(err)
	}
	storage, err := store.OpenStorage(ctx, stateDir, pass)
	if err != nil {
		log.Fatal(err)
	}
	cfg := pki.Config{StateDir: stateDir, PassphraseFile: passFile}
	cfg.Defaults()
	authority, err := ca.Open(ctx, cfg.CA(), storage, part.Deps{}, ca.OpenOptions{Create: true})
	if err != nil {
		log.Fatal(err)
	}
	root := authority.Status().Roots[0].Fingerprint

	// drawbridge backup --state-dir ... --passphrase-file ... --out ...
	b, err := backup.New(backup.Config{StateDir: stateDir, PassphraseFile: passFile}, backup.Deps{})
	if err != nil {
		log.Fatal(err)
	}
	archive := filepath.Join(dir, "ca.backup")
	if err := b.Backup(ctx, archive); err != nil {
		log.Fatal(err)
	}

	// The volume is lost.
	_ = os.RemoveAll(stateDir)

	// drawbridge restore ca.backup --state-dir ... --passphrase-file ...
	res, err := backup.RestoreFile(ctx, archive, pass, backup.RestoreOptions{StateDir: stateDir}, backup.Deps{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("same root:", res.CA.Roots[0].Fingerprint == root)
	// Output: same root: true
}
