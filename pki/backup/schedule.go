package backup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/drawbridge-proxy/drawbridge/internal/loop"
)

const (
	// Scheduled archives are drawbridge-20060102T150405Z.backup: UTC, so
	// names sort by time and never depend on the host's zone.
	namePrefix = "drawbridge-"
	nameSuffix = ".backup"
	nameLayout = "20060102T150405Z"

	tempPrefix = ".drawbridge-backup-"
	tempSuffix = ".tmp"
	// staleTemp is when a leftover temporary file (a crash mid-write) is
	// removed by a scheduled run; younger ones may belong to a backup
	// still being written by another process.
	staleTemp = time.Hour
)

var archiveName = regexp.MustCompile(`^drawbridge-\d{8}T\d{6}Z\.backup$`)

// FileName is the name of an archive made at t.
func FileName(t time.Time) string {
	return namePrefix + t.UTC().Format(nameLayout) + nameSuffix
}

// Run is the scheduled mode: a backup into cfg.Dir at once and then every
// cfg.Every, each followed by pruning to the newest cfg.Keep archives. A
// failed run is logged and audited and leaves every archive in place; the
// next run is tried on schedule. Run returns nil when ctx ends; a run in
// progress then stops and removes its temporary file.
func (b *Backer) Run(ctx context.Context) error {
	if b.cfg.Dir == "" {
		return errors.New("scheduled backups need a directory (dir)")
	}
	if err := os.MkdirAll(b.cfg.Dir, 0o700); err != nil {
		return fmt.Errorf("backup dir: %w", err)
	}
	after := b.deps.After
	if after == nil {
		after = time.After
	}
	b.log.Info("scheduled backups", "dir", b.cfg.Dir, "every", b.cfg.Every.String(), "keep", b.cfg.Keep)
	for {
		switch err := b.runOnce(ctx); {
		case err != nil && ctx.Err() != nil:
			b.log.Warn("scheduled backup interrupted by shutdown", "err", err)
		case err != nil:
			b.log.Error("scheduled backup failed; the next run is on schedule", "err", err)
		}
		select {
		case <-ctx.Done():
			b.log.Info("scheduled backups stopped")
			return nil
		case <-after(b.cfg.Every):
		}
	}
}

// RunOnce makes one timestamped archive in cfg.Dir and prunes to cfg.Keep.
func (b *Backer) RunOnce(ctx context.Context) error {
	if b.cfg.Dir == "" {
		return errors.New("a timestamped backup needs a directory (dir)")
	}
	return b.runOnce(ctx)
}

func (b *Backer) runOnce(ctx context.Context) error {
	return loop.Guard(nil, "", func() error { return b.backupAndPrune(ctx) })
}

func (b *Backer) backupAndPrune(ctx context.Context) error {
	out := filepath.Join(b.cfg.Dir, FileName(b.deps.now()))
	if _, err := os.Lstat(out); err == nil {
		return fmt.Errorf("%s already exists; runs closer than a second apart share a name", out)
	}
	if err := b.Backup(ctx, out); err != nil {
		return err
	}
	return b.prune()
}

// prune removes all but the newest cfg.Keep archives (by the time in their
// names) and stale temporary files. Other files in Dir, a database dump
// say, are never touched.
func (b *Backer) prune() error {
	entries, err := os.ReadDir(b.cfg.Dir)
	if err != nil {
		return fmt.Errorf("pruning: %w", err)
	}
	var archives []string
	var errs []error
	for _, e := range entries {
		name := e.Name()
		switch {
		case archiveName.MatchString(name) && e.Type().IsRegular():
			archives = append(archives, name)
		case strings.HasPrefix(name, tempPrefix) && strings.HasSuffix(name, tempSuffix) && e.Type().IsRegular():
			if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > staleTemp { // file times are real time
				errs = append(errs, b.remove(name, "stale temporary file"))
			}
		}
	}
	slices.Sort(archives)
	for len(archives) > b.cfg.Keep {
		errs = append(errs, b.remove(archives[0], "older than the newest keep"))
		archives = archives[1:]
	}
	return errors.Join(errs...)
}

func (b *Backer) remove(name, why string) error {
	p := filepath.Join(b.cfg.Dir, name)
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("pruning: %w", err)
	}
	b.log.Info("backup pruned", "path", p, "reason", why, "keep", b.cfg.Keep)
	return nil
}
