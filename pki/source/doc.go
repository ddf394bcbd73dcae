// Package source supplies certificates for the public edge that the
// internal CA does not issue: from files on disk, polled and hot-reloaded
// (FileSource), or from an ACME CA through certmagic (ACME). Both are a
// cert.CertSource for a server config.
package source
