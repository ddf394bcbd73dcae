package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/drawbridge-proxy/drawbridge/pki"
	"github.com/drawbridge-proxy/drawbridge/pki/backup"
	"github.com/drawbridge-proxy/drawbridge/pki/store"
	"github.com/drawbridge-proxy/drawbridge/telemetry"
	"github.com/drawbridge-proxy/drawbridge/telemetry/audit"
)

type backupOptions struct {
	config, out, dir, stateDir, passphraseFile, auditLog string
	every                                                time.Duration
	keep                                                 int
}

const auditLogUsage = "append a backup.create or backup.restore event to this audit log (hash-chained, one writer per file: not the file a running gateway writes)"

func backupCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("backup --config FILE [--out FILE | --dir DIR [--every 24h] [--keep 7]]",
		"Write one encrypted archive of the PKI state dir and the configuration file,\n"+
			"readable only with the CA passphrase. The state dir and the passphrase file\n"+
			"come from the file's pki section (state_dir, passphrase_file) unless given as\n"+
			"flags. With --dir the archive gets a timestamped name and older ones beyond\n"+
			"--keep are removed; with --every it runs until SIGTERM, once at start and then\n"+
			"on that interval (a backup service). Logs are JSON lines on stdout.", stderr)
	var o backupOptions
	fs.StringVar(&o.config, "config", "", "configuration file (YAML), archived with the state")
	fs.StringVar(&o.out, "out", "", "archive to write (default: ./"+backup.FileName(time.Unix(0, 0))+" with the current time)")
	fs.StringVar(&o.dir, "dir", "", "directory for timestamped archives")
	fs.DurationVar(&o.every, "every", 0, "with --dir: back up on this interval until stopped, e.g. 24h")
	fs.IntVar(&o.keep, "keep", backup.DefaultKeep, "with --dir: how many archives to keep")
	fs.StringVar(&o.stateDir, "state-dir", "", "PKI state dir (default: pki.state_dir of the config file, else "+pki.DefaultStateDir+")")
	fs.StringVar(&o.passphraseFile, "passphrase-file", "", "file holding the CA passphrase (default: pki.passphrase_file of the config file)")
	fs.StringVar(&o.auditLog, "audit-log", "", auditLogUsage)
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if msg := o.usageError(fs.NArg()); msg != "" {
		fmt.Fprintln(stderr, "backup: "+msg)
		return 2
	}
	if err := runBackup(ctx, o, stdout); err != nil {
		fmt.Fprintf(stderr, "backup: %v\n", err)
		return 1
	}
	return 0
}

func (o *backupOptions) usageError(nargs int) string {
	switch {
	case nargs > 0:
		return "unexpected arguments; flags only"
	case o.config == "":
		return "--config FILE is required"
	case o.out != "" && o.dir != "":
		return "give --out or --dir, not both"
	case o.every != 0 && o.dir == "":
		return "--every needs --dir"
	case o.keep < 1:
		return "--keep must be >= 1"
	}
	return ""
}

func runBackup(ctx context.Context, o backupOptions, logOut io.Writer) error {
	paths, err := readPKIPaths(o.config)
	if err != nil {
		return err
	}
	cfg := backup.Config{
		StateDir:       firstNonEmpty(o.stateDir, paths.StateDir, pki.DefaultStateDir),
		PassphraseFile: firstNonEmpty(o.passphraseFile, paths.PassphraseFile),
		ConfigFile:     o.config,
		Dir:            o.dir,
		Every:          o.every,
		Keep:           o.keep,
	}
	if cfg.PassphraseFile == "" {
		return errors.New("no passphrase file: set pki.passphrase_file in the config file or give --passphrase-file FILE")
	}
	log, err := backupLogger(logOut)
	if err != nil {
		return err
	}
	actor := "operator"
	if o.every > 0 {
		actor = "drawbridge"
	}
	deps, closeAudit, err := backupDeps(log, o.auditLog, actor)
	if err != nil {
		return err
	}
	defer closeAudit()
	b, err := backup.New(cfg, deps)
	if err != nil {
		return err
	}
	switch {
	case o.every > 0:
		return b.Run(ctx)
	case o.dir != "":
		return b.RunOnce(ctx)
	}
	out := o.out
	if out == "" {
		out = backup.FileName(time.Now())
	}
	return b.Backup(ctx, out)
}

func restoreCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("restore FILE --state-dir DIR --passphrase-file FILE [--config-out FILE]",
		"Restore a backup archive into an empty or absent PKI state dir, and its\n"+
			"configuration file into --config-out if given (never over an existing file).\n"+
			"The archive is opened with the passphrase it was made with; a damaged, altered\n"+
			"or foreign archive is refused. The state is staged and opened (keyring, CA)\n"+
			"before it is put in place: a failure writes nothing. Run it as the user the\n"+
			"gateway runs as, with the gateway stopped.", stderr)
	stateDir := fs.String("state-dir", "", "state dir to restore into: absent, or an empty directory")
	passphraseFile := fs.String("passphrase-file", "", "file holding the CA passphrase the backup was made with (default: pki.passphrase_file of --config)")
	configFile := fs.String("config", "", "a configuration file to take pki.passphrase_file from")
	configOut := fs.String("config-out", "", "where to write the archived configuration file (default: not written)")
	auditLog := fs.String("audit-log", "", auditLogUsage)
	rest, code := parseInterspersed(fs, args)
	if code >= 0 {
		return code
	}
	switch {
	case len(rest) != 1:
		fmt.Fprintln(stderr, "restore: give exactly one archive FILE")
		return 2
	case *stateDir == "":
		fmt.Fprintln(stderr, "restore: --state-dir DIR is required")
		return 2
	}
	passFile := *passphraseFile
	if passFile == "" && *configFile != "" {
		paths, err := readPKIPaths(*configFile)
		if err != nil {
			fmt.Fprintf(stderr, "restore: %v\n", err)
			return 1
		}
		passFile = paths.PassphraseFile
	}
	if passFile == "" {
		fmt.Fprintln(stderr, "restore: --passphrase-file FILE is required (the CA passphrase the backup was made with)")
		return 2
	}
	opts := backup.RestoreOptions{StateDir: *stateDir, ConfigOut: *configOut}
	if err := runRestore(ctx, rest[0], passFile, *auditLog, opts, stdout); err != nil {
		fmt.Fprintf(stderr, "restore: %v\n", err)
		return 1
	}
	return 0
}

func runRestore(ctx context.Context, archive, passFile, auditLog string, opts backup.RestoreOptions, logOut io.Writer) error {
	log, err := backupLogger(logOut)
	if err != nil {
		return err
	}
	deps, closeAudit, err := backupDeps(log, auditLog, "operator")
	if err != nil {
		return err
	}
	defer closeAudit()
	pass, err := store.ReadPassphrase(passFile)
	if err != nil {
		deps.Audit(ctx, backup.AuditEvent{Name: backup.EventRestore, Subject: archive, Result: backup.ResultFailure, Reason: err.Error()})
		return err
	}
	defer clear(pass)
	_, err = backup.RestoreFile(ctx, archive, pass, opts, deps)
	return err
}

// backupDeps is where backups and restores meet the rest of the gateway:
// the log, and the audit log at auditPath (none when empty). The audit log
// is a hash chain with one writer per file, so a backup service gets a
// file of its own rather than the running gateway's.
func backupDeps(log *slog.Logger, auditPath, actor string) (backup.Deps, func(), error) {
	deps := backup.Deps{Logger: log, Audit: func(context.Context, backup.AuditEvent) {}}
	if auditPath == "" {
		return deps, func() {}, nil
	}
	al, err := audit.Open(audit.Config{Path: auditPath}, audit.Deps{Logger: log})
	if err != nil {
		return deps, nil, err
	}
	deps.Audit = func(ctx context.Context, e backup.AuditEvent) {
		err := al.Record(ctx, audit.Event{Name: e.Name, Subject: e.Subject, Actor: actor, Result: e.Result, Reason: e.Reason})
		if err != nil {
			log.Error("writing the audit log", "event", e.Name, "err", err)
		}
	}
	return deps, func() { _ = al.Close() }, nil
}

func backupLogger(w io.Writer) (*slog.Logger, error) {
	log, _, err := telemetry.NewLogger(telemetry.LogConfig{}, w)
	return log, err
}

// pkiPaths are the keys of the config file's pki section that backup and
// restore need.
type pkiPaths struct {
	StateDir       string `yaml:"state_dir"`
	PassphraseFile string `yaml:"passphrase_file"`
}

// readPKIPaths reads pki.state_dir and pki.passphrase_file from a config
// file. Only those keys are decoded, and leniently, not through
// config.Load: a backup must not fail because another section has a
// mistake or names files the backup container does not mount (the file is
// archived as it is).
func readPKIPaths(path string) (pkiPaths, error) {
	data, err := os.ReadFile(path) // #nosec G304 -- the operator names the config file
	if err != nil {
		return pkiPaths{}, fmt.Errorf("reading config: %w", err)
	}
	var f struct {
		PKI pkiPaths `yaml:"pki"`
	}
	if err := yaml.Unmarshal(data, &f); err != nil {
		return pkiPaths{}, fmt.Errorf("%s: reading the pki section: %w", path, err)
	}
	for _, p := range []*string{&f.PKI.StateDir, &f.PKI.PassphraseFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			return pkiPaths{}, fmt.Errorf("%s: pki paths must be absolute, got %q", path, *p)
		}
	}
	return f.PKI, nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// parseInterspersed parses flags given before and after positional
// arguments (`restore FILE --state-dir DIR`), which the flag package alone
// stops at. It returns the positional arguments, and the exit code when
// parsing ended the command or -1.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, int) {
	var rest []string
	for {
		if code := parseFlags(fs, args); code >= 0 {
			return nil, code
		}
		if fs.NArg() == 0 {
			return rest, -1
		}
		if used := len(args) - fs.NArg(); used > 0 && args[used-1] == "--" {
			return append(rest, fs.Args()...), -1
		}
		rest = append(rest, fs.Arg(0))
		args = fs.Args()[1:]
	}
}
