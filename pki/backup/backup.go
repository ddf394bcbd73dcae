package backup

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/drawbridge-proxy/drawbridge/internal/atomicfile"
	"github.com/drawbridge-proxy/drawbridge/pki/layout"
	"github.com/drawbridge-proxy/drawbridge/pki/store"
	"github.com/drawbridge-proxy/drawbridge/telemetry/configerr"
)

// Defaults for Config fields left at their zero value.
const (
	DefaultEvery = 24 * time.Hour
	DefaultKeep  = 7
	// MaxConfigSize bounds the configuration file put in an archive.
	MaxConfigSize = 1 << 20
	// lockTimeout bounds the wait for the state dir's locks: a lock file
	// left by a crash goes stale (certmagic) well within it.
	lockTimeout = 2 * time.Minute
)

// Config says what a Backer backs up and, in scheduled mode, where and how
// often.
type Config struct {
	// StateDir is the PKI state dir (pki.Config.StateDir). Required.
	StateDir string
	// PassphraseFile holds the CA passphrase (pki.Config.PassphraseFile):
	// the archive is readable with that passphrase only. It is read again
	// for each backup, so a rotated secret is followed. Required.
	PassphraseFile string
	// ConfigFile is the configuration file to archive with the state.
	// Zero: none.
	ConfigFile string
	// Dir is where scheduled backups go, one timestamped file per run.
	// Zero: Run refuses to start (Backup to a named file still works).
	Dir string
	// Every is the interval between scheduled backups. Zero: 24h.
	Every time.Duration
	// Keep is how many scheduled backups stay in Dir; older ones are
	// removed after each successful run. Zero: 7.
	Keep int
	// KDF derives the archive key from the passphrase. Zero: store.DefaultKDF.
	// Tests lower it; production has no reason to.
	KDF store.KDF
}

// Defaults fills every zero field with its default.
func (c *Config) Defaults() {
	if c.Every == 0 {
		c.Every = DefaultEvery
	}
	if c.Keep == 0 {
		c.Keep = DefaultKeep
	}
	if c.KDF == (store.KDF{}) {
		c.KDF = store.DefaultKDF()
	}
}

// Validate returns every problem at once as a configerr.List. Call it
// after Defaults.
func (c *Config) Validate() error {
	var errs configerr.List
	if c.StateDir == "" {
		errs.Add("state_dir", "required")
	}
	if c.PassphraseFile == "" {
		errs.Add("passphrase_file", "required: the file holding the CA passphrase")
	}
	if c.Every < time.Minute {
		errs.Add("every", "must be >= 1m, got %v", c.Every)
	}
	if c.Keep < 1 {
		errs.Add("keep", "must be >= 1, got %d", c.Keep)
	}
	if err := checkKDF(c.KDF); err != nil {
		errs.Add("kdf", "%v", err)
	}
	return errs.Err()
}

// Audit event names and results, in the vocabulary of telemetry's audit
// log.
const (
	EventBackup   = "backup.create"
	EventRestore  = "backup.restore"
	ResultSuccess = "success"
	ResultFailure = "failure"
)

// AuditEvent is a backup or a restore, a security event for the audit
// log. It never holds a secret: Reason is an error text, and errors here
// never carry the passphrase.
type AuditEvent struct {
	// Name is EventBackup or EventRestore.
	Name string
	// Subject is the archive file.
	Subject string
	// Result is ResultSuccess or ResultFailure.
	Result string
	// Reason says why it failed; empty on success.
	Reason string
}

// Deps are what backups take from the outside. The zero value works: no
// logs, no audit, the system clock and timers.
type Deps struct {
	// Logger receives one line per backup, restore, pruned file and
	// failure. Nil: discard.
	Logger *slog.Logger
	// Audit receives each backup and restore, successful or not. Nil:
	// none. The CLI passes it to telemetry's audit log (audit.Log.Record).
	Audit func(context.Context, AuditEvent)
	// Now names and dates archives. Nil: time.Now.
	Now func() time.Time
	// After waits between scheduled runs. Nil: time.After.
	After func(time.Duration) <-chan time.Time

	// betweenPasses is snapshot's test hook.
	betweenPasses func(attempt int)
}

func (d Deps) logger() *slog.Logger {
	if d.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Logger
}

func (d Deps) now() time.Time {
	if d.Now == nil {
		return time.Now()
	}
	return d.Now()
}

func (d Deps) audit(ctx context.Context, name, subject string, err error) {
	if d.Audit == nil {
		return
	}
	ev := AuditEvent{Name: name, Subject: subject, Result: ResultSuccess}
	if err != nil {
		ev.Result, ev.Reason = ResultFailure, err.Error()
	}
	d.Audit(ctx, ev)
}

// Backer writes backups of one state dir.
type Backer struct {
	cfg  Config
	deps Deps
	log  *slog.Logger
}

// New returns a Backer for cfg, which New completes with Defaults and
// checks with Validate.
func New(cfg Config, deps Deps) (*Backer, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Backer{cfg: cfg, deps: deps, log: deps.logger().With("component", "backup")}, nil
}

// Backup writes one archive to out, atomically: a temporary file beside
// it, synced, then renamed over out. The file is 0600.
func (b *Backer) Backup(ctx context.Context, out string) error {
	start := time.Now()
	n, size, err := b.backup(ctx, out)
	b.deps.audit(ctx, EventBackup, out, err)
	if err != nil {
		return err
	}
	b.log.Info("backup written", "path", out, "files", n, "bytes", size, "duration", time.Since(start).Round(time.Millisecond).String())
	return nil
}

func (b *Backer) backup(ctx context.Context, out string) (files int, size int64, err error) {
	pass, err := store.ReadPassphrase(b.cfg.PassphraseFile)
	if err != nil {
		return 0, 0, err
	}
	defer clear(pass)
	a, err := b.archive(ctx, pass)
	if err != nil {
		return 0, 0, err
	}
	size, err = atomicfile.Write(out, tempFile, func(w io.Writer) error { return Write(w, a, pass, b.cfg.KDF) })
	if err != nil {
		return 0, 0, fmt.Errorf("writing %s: %w", out, err)
	}
	return len(a.State), size, nil
}

// archive copies the state dir and the config file. Under the re-seal
// lock (so the keys are not being sealed again under a rotated passphrase
// meanwhile) it checks the passphrase against the keyring, then takes the
// CA's state lock too and copies the files. Neither lock needs the other,
// so the order cannot deadlock with the gateway.
func (b *Backer) archive(ctx context.Context, pass []byte) (*Archive, error) {
	dir := b.cfg.StateDir
	lctx, cancel := context.WithTimeout(ctx, lockTimeout)
	defer cancel()
	fsto := &certmagic.FileStorage{Path: dir}
	if err := checkStateDir(dir); err != nil {
		return nil, err // before Lock, which would create the directory
	}
	unlockReseal, err := b.lock(lctx, fsto, layout.ResealLock)
	if err != nil {
		return nil, err
	}
	defer unlockReseal()
	if err := checkStateDir(dir); err != nil {
		return nil, err
	}
	// OpenStorage changes nothing when the keyring exists and no re-seal
	// journal does; it fails on a passphrase other than the one sealing
	// the keys, which must never seal a backup of them.
	st, err := store.OpenStorage(ctx, dir, pass)
	if err != nil {
		return nil, err
	}
	created := b.deps.now().UTC()
	unlockState, err := b.lock(lctx, fsto, layout.StateLock)
	if err != nil {
		return nil, err
	}
	files, err := snapshot(ctx, st.Path(), b.deps.betweenPasses)
	unlockState()
	if err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(files, func(f File) bool { return f.Name == layout.KeyringKey }) {
		return nil, fmt.Errorf("state dir %s: the copy holds no keyring; nothing written", dir)
	}
	a := &Archive{Manifest: Manifest{Created: created, StateDir: dir}, State: files}
	if b.cfg.ConfigFile != "" {
		if a.Config, err = readFileMax(b.cfg.ConfigFile, MaxConfigSize); err != nil {
			return nil, fmt.Errorf("reading config file: %w", err)
		}
		a.Manifest.ConfigName = filepath.Base(b.cfg.ConfigFile)
	}
	return a, nil
}

// checkStateDir refuses a dir without keyring, and one whose last re-seal
// was interrupted: opening it would finish the re-seal, a write the
// gateway should make, not a backup.
func checkStateDir(dir string) error {
	keyring := filepath.Join(dir, filepath.FromSlash(layout.KeyringKey))
	if _, err := os.Stat(keyring); err != nil {
		return fmt.Errorf("state dir %s: no keyring (%s): is state_dir right? %w", dir, layout.KeyringKey, err)
	}
	if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(layout.ResealJournalKey))); err == nil {
		return fmt.Errorf("state dir %s: a re-seal under a new passphrase was interrupted; start the gateway (it finishes the re-seal), then back up", dir)
	}
	return nil
}

// lock takes the named storage lock and returns its release.
func (b *Backer) lock(ctx context.Context, fsto *certmagic.FileStorage, name string) (func(), error) {
	if err := fsto.Lock(ctx, name); err != nil {
		return nil, fmt.Errorf("waiting for the %s lock: %w", name, err)
	}
	return func() {
		if err := fsto.Unlock(context.WithoutCancel(ctx), name); err != nil {
			b.log.Error("releasing a state dir lock", "lock", name, "err", err)
		}
	}, nil
}

// tempFile is how backup and restore name their temporary files, which
// prune removes when a crash left them.
var tempFile = atomicfile.Options{Pattern: tempPrefix + "*" + tempSuffix}

// ReadFile opens the archive at path, checking its size first.
func ReadFile(path string, passphrase []byte) (*Archive, error) {
	f, err := os.Open(path) // #nosec G304 -- the operator names the archive
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if fi.Size() > MaxSize {
		return nil, fmt.Errorf("%w: %s is %d bytes; an archive is at most %d", ErrCorrupt, path, fi.Size(), MaxSize)
	}
	return Read(f, passphrase)
}
