// Package certfiles writes certificates to files, for services that speak
// TLS themselves and read their certificate from disk ('drawbridge cert
// issue', 'trust-bundle', 'ca bundle --out', the demo): a leaf's chain and
// key and the trust bundle. Each file is replaced atomically (written
// beside it, synced, then renamed) with its mode and, when asked, its owner,
// and a writer that follows renewals rewrites a file only when it changed.
package certfiles
