package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

const (
	snapshotAttempts = 5
	snapshotBackoff  = 100 * time.Millisecond
)

// snapshot reads every regular file under dir twice and returns the first
// pass when the second found the same names and contents: then every file
// held that content at the instant between the passes. Otherwise
// something wrote meanwhile (certmagic renewing a leaf) and it starts
// again, a few times. betweenPasses, if not nil, runs between the passes
// (tests change files there).
//
// The locks directory is left out: its files belong to running processes,
// and a restored lock would only hold the restored CA up until it goes
// stale.
func snapshot(ctx context.Context, dir string, betweenPasses func(attempt int)) ([]File, error) {
	// WalkDir does not follow a symlinked root: resolve it (a host may
	// link /var/lib/drawbridge elsewhere).
	dir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, fmt.Errorf("reading state dir: %w", err)
	}
	for attempt := 1; ; attempt++ {
		first, err := readTree(dir)
		if err == nil {
			if betweenPasses != nil {
				betweenPasses(attempt)
			}
			var same bool
			if same, err = sameTree(dir, first); err == nil && same {
				return first, nil
			}
		}
		// A file that vanished between listing and reading is a change too
		// (certmagic's temporary files are renamed away).
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		if attempt == snapshotAttempts {
			if err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("the state dir %s changed during each of %d attempts to copy it; try again", dir, attempt)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(attempt) * snapshotBackoff):
		}
	}
}

// readTree reads the files under dir in lexical order.
func readTree(dir string) ([]File, error) {
	var files []File
	var total int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch {
		case rel == ".":
			return nil
		case d.IsDir() && rel == "locks":
			return filepath.SkipDir
		case d.IsDir():
			return nil
		case !d.Type().IsRegular():
			return fmt.Errorf("%s is a %v, not a regular file: a state dir holds regular files only", p, d.Type())
		}
		data, err := readFileMax(p, MaxSize-total)
		if err != nil {
			return err
		}
		total += int64(len(data))
		files = append(files, File{Name: rel, Data: data})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading state dir: %w", err)
	}
	return files, nil
}

// sameTree reports whether dir still holds exactly files.
func sameTree(dir string, files []File) (bool, error) {
	again, err := readTree(dir)
	if err != nil {
		return false, err
	}
	if len(again) != len(files) {
		return false, nil
	}
	for i := range files {
		if again[i].Name != files[i].Name || !bytes.Equal(again[i].Data, files[i].Data) {
			return false, nil
		}
	}
	return true, nil
}

// readFileMax reads path, refusing more than limit bytes.
func readFileMax(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path) // #nosec G304 -- a file of the operator's state dir
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: the state dir is larger than an archive may be (%d bytes)", path, MaxSize)
	}
	return data, nil
}
