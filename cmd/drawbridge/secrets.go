package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/drawbridge-proxy/drawbridge/cmd/drawbridge/internal/config"
	"github.com/drawbridge-proxy/drawbridge/cmd/drawbridge/internal/secret"
	"github.com/drawbridge-proxy/drawbridge/pki/store"
	"github.com/drawbridge-proxy/drawbridge/proxy"
	"github.com/drawbridge-proxy/drawbridge/telemetry/audit"
)

// newSecrets returns the one Watcher every secret of the gateway shares:
// the CA passphrase, the admin token, secrets injected in request headers.
// Its reads and rotations go to the audit log, fingerprinted with the audit
// log's key when one is configured.
func newSecrets(f *config.File, log *slog.Logger, obs *observability) (*secret.Watcher, error) {
	key, err := audit.ReadFingerprintKey(f.Audit.FingerprintKeyFile)
	if err != nil {
		return nil, fmt.Errorf("audit.fingerprint_key_file: %w", err)
	}
	return secret.NewWatcher(f.Secrets.PollInterval, secret.Deps{
		Logger:         log.With("component", "secrets"),
		Registerer:     obs.registry,
		FingerprintKey: key,
		Audit:          auditSecretEvent(obs.audit),
	})
}

// auditSecretEvent writes a secret read or rotation to the audit log.
func auditSecretEvent(a *audit.Log) func(secret.Event) {
	return func(ev secret.Event) {
		result := audit.ResultSuccess
		if ev.Result != "ok" {
			result = audit.ResultFailure
		}
		// A failed write is counted and logged by the audit log itself.
		_ = a.Record(context.Background(), audit.Event{
			Name: ev.Action, Subject: ev.Secret + " (" + ev.Source + ")", Actor: "drawbridge",
			Result: result, Reason: ev.Reason, Fingerprint: ev.Fingerprint,
		})
	}
}

// secretName names a secret by its file's base name (or its environment
// variable), as Docker names the files under /run/secrets.
func secretName(ref string) string {
	r, err := secret.ParseRef(ref)
	if err != nil {
		return ref
	}
	if r.Kind == "file" {
		return filepath.Base(r.Path)
	}
	return r.Path
}

// secretSource adapts the Watcher to proxy.SecretSource.
type secretSource struct{ w *secret.Watcher }

var _ proxy.SecretSource = secretSource{}

func (s secretSource) Secret(ref string, validate func([]byte) error) (proxy.SecretValue, error) {
	return s.w.Add(secretName(ref), ref, validate)
}

// passphraseSecret watches pki.passphrase_file. A changed passphrase
// re-seals every key in the state dir under it, without a restart; one that
// is too short, or that the re-seal fails with, is refused and the old one
// stays in service. storage is nil until the PKI is open (the first read
// only checks the length).
type passphraseSecret struct {
	s       *secret.Secret
	storage atomic.Pointer[store.SealedStorage]
}

func watchPassphrase(w *secret.Watcher, path string, log *slog.Logger) (*passphraseSecret, error) {
	ps := &passphraseSecret{}
	var err error
	ps.s, err = w.Add(filepath.Base(path), "file:"+path, func(v []byte) error {
		if len(v) < store.MinPassphraseLength {
			return fmt.Errorf("the passphrase is %d bytes, need at least %d", len(v), store.MinPassphraseLength)
		}
		st := ps.storage.Load()
		if st == nil {
			return nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := st.Reseal(ctx, v); err != nil {
			return err
		}
		log.Info("state dir re-sealed under the new passphrase", "state_dir", st.Path())
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pki.passphrase_file: %w", err)
	}
	return ps, nil
}
