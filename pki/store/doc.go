// Package store is the PKI's sealed storage: a certmagic.Storage over a
// FileStorage that seals every private key with a key derived from a
// passphrase (argon2id, XChaCha20-Poly1305), so neither the CA keys nor
// the leaf keys certmagic stores are ever written in clear. The
// passphrase rotates without a restart (Reseal), and a re-seal a crash
// interrupted is finished by the next open, with either passphrase.
package store
