package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/drawbridge-proxy/drawbridge/internal/atomicfile"
	"github.com/drawbridge-proxy/drawbridge/pki/ca"
	"github.com/drawbridge-proxy/drawbridge/pki/layout"
	"github.com/drawbridge-proxy/drawbridge/pki/part"
	"github.com/drawbridge-proxy/drawbridge/pki/store"
)

// ErrNotEmpty means the restore target holds something already.
var ErrNotEmpty = errors.New("the state dir is not empty")

// RestoreOptions say where a restore writes.
type RestoreOptions struct {
	// StateDir receives the state: it must be absent (its parent must
	// exist) or an empty directory. Required.
	StateDir string
	// ConfigOut receives the archived configuration file; it must not
	// exist. Zero: the configuration is not written.
	ConfigOut string

	// verify checks the staged state; nil means verifyState (tests
	// replace it).
	verify func(ctx context.Context, dir string, passphrase []byte) (*ca.Status, error)
	// noSync skips syncing each staged file, which the fuzzer cannot
	// afford on a busy disk; publishing is still synced.
	noSync bool
}

// RestoreResult describes a finished restore.
type RestoreResult struct {
	Manifest Manifest
	// CA is the restored CA; nil when the state holds none (an enrolling
	// instance). Its TrustDomain is empty: the archive does not say it.
	CA *ca.Status
}

// RestoreFile restores the archive at path with passphrase into
// opts.StateDir, and its configuration file into opts.ConfigOut if set,
// after checking the target first: a target that would be refused costs
// no key derivation. The files are staged first, the staged state is
// opened with passphrase (keyring, and the CA with its keys when there is
// one), and only then published; on any failure nothing is left behind.
// Files are 0600, directories 0700, owned by the calling user: run it as
// the user the gateway runs as. The restore is audited and logged.
func RestoreFile(ctx context.Context, path string, passphrase []byte, opts RestoreOptions, deps Deps) (*RestoreResult, error) {
	start := time.Now()
	res, err := restoreFile(ctx, path, passphrase, opts)
	deps.audit(ctx, EventRestore, path, err)
	if err != nil {
		return nil, err
	}
	attrs := []any{"path", path, "state_dir", opts.StateDir, "files", res.Manifest.Files,
		"created", res.Manifest.Created, "duration", time.Since(start).Round(time.Millisecond).String()}
	if res.CA != nil && len(res.CA.Roots) > 0 {
		attrs = append(attrs, "root", res.CA.Roots[0].Fingerprint, "intermediate_expires", res.CA.Intermediate.NotAfter)
	}
	if opts.ConfigOut != "" {
		attrs = append(attrs, "config_out", opts.ConfigOut)
	}
	deps.logger().With("component", "backup").Info("restored", attrs...)
	return res, nil
}

func restoreFile(ctx context.Context, path string, passphrase []byte, opts RestoreOptions) (*RestoreResult, error) {
	t, err := planTarget(opts)
	if err != nil {
		return nil, err
	}
	a, err := ReadFile(path, passphrase)
	if err != nil {
		return nil, explain(err)
	}
	return t.restore(ctx, a, passphrase, opts.verify)
}

// explain adds what to do to the errors an operator can act on.
func explain(err error) error {
	switch {
	case errors.Is(err, store.ErrWrongPassphrase):
		return fmt.Errorf("%w: this archive was sealed with another passphrase; give the passphrase file that was in use when the backup was made (nothing was written)", err)
	case errors.Is(err, ErrCorrupt):
		return fmt.Errorf("%w: use another copy of the backup (nothing was written)", err)
	case errors.Is(err, ErrUnsafeEntry):
		return fmt.Errorf("%w: drawbridge never writes such an archive; do not trust this file (nothing was written)", err)
	}
	return err
}

// target is a checked restore destination.
type target struct {
	dir string
	// inside: dir exists (maybe a mount point, which cannot be replaced
	// by a rename), so the files are staged inside it and moved up.
	inside    bool
	configOut string
	sync      bool
}

func planTarget(opts RestoreOptions) (*target, error) {
	if opts.StateDir == "" {
		return nil, errors.New("state dir: required")
	}
	dir, err := filepath.Abs(opts.StateDir)
	if err != nil {
		return nil, err
	}
	t := &target{dir: dir, sync: !opts.noSync}
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if pi, err := os.Stat(filepath.Dir(dir)); err != nil || !pi.IsDir() {
			return nil, fmt.Errorf("state dir %s: its parent directory does not exist: create it first", dir)
		}
	case err != nil:
		return nil, err
	case !fi.IsDir():
		return nil, fmt.Errorf("state dir %s is not a directory", dir)
	default:
		if err := checkEmpty(dir, ""); err != nil {
			return nil, err
		}
		t.inside = true
	}
	if opts.ConfigOut != "" {
		if t.configOut, err = filepath.Abs(opts.ConfigOut); err != nil {
			return nil, err
		}
		if _, err := os.Lstat(t.configOut); err == nil {
			return nil, fmt.Errorf("config out %s exists: restore never overwrites a file; name another", t.configOut)
		}
		if pi, err := os.Stat(filepath.Dir(t.configOut)); err != nil || !pi.IsDir() {
			return nil, fmt.Errorf("config out %s: its directory does not exist", t.configOut)
		}
	}
	return t, nil
}

// checkEmpty fails unless dir holds nothing but except.
func checkEmpty(dir, except string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var names []string
	for _, e := range entries {
		if e.Name() != except {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return nil
	}
	if len(names) > 3 {
		names = append(names[:3], "...")
	}
	return fmt.Errorf("%w: %s holds %s: restore writes only into an empty or absent state dir; move what is there away first (it may hold the only copy of keys)",
		ErrNotEmpty, dir, strings.Join(names, ", "))
}

func (t *target) restore(ctx context.Context, a *Archive, passphrase []byte, verify func(context.Context, string, []byte) (*ca.Status, error)) (res *RestoreResult, err error) {
	if !slices.ContainsFunc(a.State, func(f File) bool { return f.Name == layout.KeyringKey }) {
		return nil, fmt.Errorf("the archive holds no keyring (%s): it is not a drawbridge state dir", layout.KeyringKey)
	}
	if t.configOut != "" && a.Config == nil {
		return nil, errors.New("the archive holds no configuration file (it was made without one); leave out the config output")
	}
	if verify == nil {
		verify = verifyState
	}
	staging, err := t.stage(a.State)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(staging)
		}
	}()
	status, err := verify(ctx, staging, passphrase)
	if err != nil {
		return nil, fmt.Errorf("checking the restored state before publishing it: %w", err)
	}
	// Opening the CA took its storage lock, which leaves an empty locks
	// directory behind.
	if err := os.RemoveAll(filepath.Join(staging, "locks")); err != nil {
		return nil, err
	}
	if err := t.publish(staging, a.Config); err != nil {
		return nil, err
	}
	return &RestoreResult{Manifest: a.Manifest, CA: status}, nil
}

// stage writes files into a new directory beside the target (or inside an
// existing one) and returns it.
func (t *target) stage(files []File) (string, error) {
	parent := filepath.Dir(t.dir)
	if t.inside {
		parent = t.dir
	}
	staging, err := os.MkdirTemp(parent, ".drawbridge-restore-")
	if err != nil {
		return "", fmt.Errorf("staging the restore: %w", err)
	}
	if err := writeTree(staging, files, t.sync); err != nil {
		_ = os.RemoveAll(staging)
		return "", fmt.Errorf("staging the restore: %w", err)
	}
	return staging, nil
}

// writeTree writes files under root: files 0600, directories 0700, each
// synced. Names were checked when the archive was read; each joined path
// is checked again to be under root, and files are created exclusively,
// so nothing already there is followed or overwritten.
func writeTree(root string, files []File, sync bool) error {
	dirs := map[string]bool{root: true}
	for _, f := range files {
		if err := checkName(f.Name); err != nil {
			return fmt.Errorf("%q: %w", f.Name, err)
		}
		p := filepath.Join(root, filepath.FromSlash(f.Name))
		if rel, err := filepath.Rel(root, p); err != nil || !filepath.IsLocal(rel) {
			return fmt.Errorf("%q: outside the target", f.Name)
		}
		for d := filepath.Dir(p); !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		if err := writeNewFile(p, f.Data, sync); err != nil {
			return err
		}
	}
	for d := range dirs {
		if err := os.Chmod(d, 0o700); err != nil { //nolint:gosec // G302: directories, owner only
			return err
		}
		if !sync {
			continue
		}
		if err := atomicfile.SyncDir(d); err != nil {
			return err
		}
	}
	return nil
}

func writeNewFile(p string, data []byte, sync bool) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600) // #nosec G304 -- checked to be under the staging dir
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o600) // whatever the umask
	}
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// publish puts the configuration file in place, then the staged state;
// when the state cannot be published the configuration file is removed.
func (t *target) publish(staging string, config []byte) error {
	if t.configOut != "" {
		if err := publishNew(t.configOut, config); err != nil {
			return fmt.Errorf("writing config out: %w", err)
		}
	}
	var err error
	if t.inside {
		err = t.moveUp(staging)
	} else if err = os.Rename(staging, t.dir); err == nil {
		err = atomicfile.SyncDir(filepath.Dir(t.dir))
	}
	if err != nil {
		if t.configOut != "" {
			_ = os.Remove(t.configOut)
		}
		return fmt.Errorf("publishing the restored state: %w", err)
	}
	return nil
}

// publishNew writes a new file at path, refusing to replace one.
func publishNew(path string, data []byte) error {
	tmp, _, err := atomicfile.Temp(filepath.Dir(path), tempFile, func(w io.Writer) error { _, err := w.Write(data); return err })
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	// A hard link fails if path exists, where a rename would replace it.
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		// A file system without hard links: check, then rename.
		if _, lerr := os.Lstat(path); lerr == nil {
			return fmt.Errorf("%s exists", path)
		}
		if err := os.Rename(tmp, path); err != nil {
			return err
		}
	}
	return atomicfile.SyncDir(filepath.Dir(path))
}

// moveUp moves the staged entries into the target directory, the one
// holding the keyring last: until it is in place, the state dir has data
// but no keyring, which drawbridge refuses to open rather than start a
// new CA over it. On failure the entries moved so far are moved back.
func (t *target) moveUp(staging string) error {
	if err := checkEmpty(t.dir, filepath.Base(staging)); err != nil {
		return err
	}
	entries, err := os.ReadDir(staging)
	if err != nil {
		return err
	}
	keyringTop, _, _ := strings.Cut(layout.KeyringKey, "/")
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if e.Name() != keyringTop {
			names = append(names, e.Name())
		}
	}
	names = append(names, keyringTop)
	for i, n := range names {
		if err := os.Rename(filepath.Join(staging, n), filepath.Join(t.dir, n)); err != nil {
			for _, m := range names[:i] {
				_ = os.Rename(filepath.Join(t.dir, m), filepath.Join(staging, m))
			}
			return err
		}
	}
	if err := os.Remove(staging); err != nil {
		return err
	}
	// The directory was there before (a volume's mount point, say); make
	// it 0700 like the rest, unless it belongs to someone else.
	if err := os.Chmod(t.dir, 0o700); err != nil && !errors.Is(err, fs.ErrPermission) { //nolint:gosec // G302: a directory, owner only
		return err
	}
	return atomicfile.SyncDir(t.dir)
}

// verifyState opens the staged state as the gateway will: the keyring
// with passphrase and, when there is a CA, the CA with its keys.
func verifyState(ctx context.Context, dir string, passphrase []byte) (*ca.Status, error) {
	st, err := store.OpenStorage(ctx, dir, passphrase)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(layout.CAStateKey))); errors.Is(err, fs.ErrNotExist) {
		return nil, nil // an enrolling instance: certificates, no CA
	}
	// Opening an existing CA for its status needs no configuration: the
	// lifetimes and intervals steer only issuance and maintenance.
	authority, err := ca.Open(ctx, ca.Config{}, st, part.Deps{}, ca.OpenOptions{})
	if err != nil {
		return nil, err
	}
	s := authority.Status()
	s.TrustDomain = ""
	return &s, nil
}
