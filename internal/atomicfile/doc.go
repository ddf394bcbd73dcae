// Package atomicfile writes a file through a synced temporary file beside it
// and a rename, so that a crash leaves the old file or the new one, never a
// part. The backups of pki/backup and the certificates, keys and trust
// bundles the drawbridge command writes all go through it.
package atomicfile
