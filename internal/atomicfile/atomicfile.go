package atomicfile

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Options say how a file is made. The zero value makes a 0600 file named
// like ".name.123456" while it is written, owned by the calling user.
type Options struct {
	// Mode is the file's permission bits. Zero: 0600.
	Mode fs.FileMode
	// Pattern names the temporary file, as os.CreateTemp's pattern (its
	// "*" is replaced by a random string), so a caller can find and remove
	// what a crash left. Zero: "." + the file's base name + ".*".
	Pattern string
	// Prepare, when set, runs on the temporary file before anything is
	// written to it (to chown it, say); its error is returned as it is.
	Prepare func(*os.File) error
}

// Write writes path with what write puts into its writer: through a
// temporary file in the same directory, synced before the rename, and the
// directory synced after. It returns the number of bytes written. On an
// error the temporary file is removed and path is as it was.
func Write(path string, opts Options, write func(io.Writer) error) (int64, error) {
	if opts.Pattern == "" {
		opts.Pattern = "." + filepath.Base(path) + ".*"
	}
	tmp, size, err := Temp(filepath.Dir(path), opts, write)
	if err != nil {
		return 0, err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return 0, err
	}
	return size, SyncDir(filepath.Dir(path))
}

// WriteBytes is Write of data.
func WriteBytes(path string, opts Options, data []byte) error {
	_, err := Write(path, opts, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
	return err
}

// Temp writes a new temporary file in dir (named by opts.Pattern, which
// must then be set), synced and closed, and returns its name and size. The
// caller moves it into place (a rename, or a link that refuses to
// replace a file) and then calls SyncDir.
func Temp(dir string, opts Options, write func(io.Writer) error) (name string, size int64, err error) {
	if opts.Mode == 0 {
		opts.Mode = 0o600
	}
	f, err := os.CreateTemp(dir, opts.Pattern)
	if err != nil {
		return "", 0, err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if err = f.Chmod(opts.Mode); err != nil {
		return "", 0, err
	}
	if opts.Prepare != nil {
		if err = opts.Prepare(f); err != nil {
			return "", 0, err
		}
	}
	cw := &countingWriter{w: f}
	if err = write(cw); err != nil {
		return "", 0, err
	}
	if err = f.Sync(); err != nil {
		return "", 0, err
	}
	if err = f.Close(); err != nil {
		return "", 0, err
	}
	return f.Name(), cw.n, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// SyncDir syncs a directory, so that a rename or link in it survives a
// crash. A file system that cannot sync a directory is not an error.
func SyncDir(dir string) error {
	d, err := os.Open(dir) // #nosec G304 -- a directory we write to
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, fs.ErrInvalid) {
		return err
	}
	return nil
}
