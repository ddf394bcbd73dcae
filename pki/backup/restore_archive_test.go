package backup

import "context"

// Restore is RestoreFile for an archive already read, without audit or
// log: the tests' way to restore a crafted archive.
func Restore(ctx context.Context, a *Archive, passphrase []byte, opts RestoreOptions) (*RestoreResult, error) {
	t, err := planTarget(opts)
	if err != nil {
		return nil, err
	}
	return t.restore(ctx, a, passphrase, opts.verify)
}
