// Package backup writes and restores drawbridge backup archives: one file
// holding a PKI state dir (the keyring, the CA's roots, intermediate and
// keys, certmagic's storage) and the configuration file, encrypted and
// integrity-protected under a key derived from the CA passphrase.
//
// # Format (version 1)
//
// An archive is a fixed 110-byte header followed by one ciphertext:
//
//	offset size field
//	     0   18 magic "drawbridge-backup\n"
//	    18    1 format version, 1
//	    19    1 key derivation, 1 = argon2id (RFC 9106)
//	    20    1 argon2id threads (lanes)
//	    21    1 reserved, 0
//	    22    4 argon2id passes, big-endian
//	    26    4 argon2id memory in KiB, big-endian
//	    30   16 salt
//	    46   32 passphrase check
//	    78   24 XChaCha20-Poly1305 nonce
//	   102    8 ciphertext length in bytes (tag included), big-endian
//	   110    n ciphertext
//
// argon2id turns the passphrase and salt into a 32-byte master key; HKDF-
// SHA256 expands it into the encryption key and the passphrase check, so
// a wrong passphrase is told apart from a damaged archive without trying
// the decryption. The whole header is the additional data of the AEAD: no
// byte of the file can change without the archive being refused. The
// check gives an attacker nothing the ciphertext did not: each guess still
// costs one argon2id.
//
// The plaintext is a tar stream (no compression, so no decompression
// bomb) of regular files only: manifest.json first, then state/<path>
// for each file of the state dir, then config when a configuration file
// was archived. Reading refuses, behind the decryption, absolute names,
// "..", backslashes, empty or "." components, symlinks, hard links,
// devices, directories, duplicates and a name that is both a file and a
// directory. An archive is at most MaxSize bytes; sizes are checked before
// anything is allocated for them.
//
// # Consistency
//
// Backup copies a live state dir while the gateway runs: it takes the
// CA's storage lock (layout.StateLock), so the CA state cannot change, then
// reads every file twice and starts again if anything differs (certmagic
// writes leaves under other locks, by rename). Two identical passes mean
// every file held the same content at the moment between them: the copy is
// the state dir as it was at one instant.
//
// # Restore
//
// Restore writes into an absent or empty state dir only. It stages the
// files in a directory beside the target (or, when the target exists,
// for example a Docker volume's mount point, inside it), checks that the
// staged state opens with the passphrase (keyring, CA and its keys), then
// publishes it with renames. A failure at any point removes what it
// staged and leaves the target as it was.
package backup
