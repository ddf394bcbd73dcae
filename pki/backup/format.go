package backup

import (
	"bytes"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime/debug"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/drawbridge-proxy/drawbridge/pki/store"
)

// MaxSize bounds an archive file. A state dir holds a few certificates and
// keys per identity: kilobytes to a few megabytes. Anything larger is not
// ours, and is refused before memory is allocated for it.
const MaxSize = 64 << 20

var (
	// ErrNotArchive means the file does not start like a drawbridge backup.
	ErrNotArchive = errors.New("not a drawbridge backup archive")
	// ErrCorrupt means the archive is truncated, damaged or was altered.
	ErrCorrupt = errors.New("archive is corrupt, truncated or was altered")
	// ErrUnsafeEntry means an authenticated archive holds an entry restore
	// must not write: a path escaping the target, a link, a device.
	ErrUnsafeEntry = errors.New("archive holds an unsafe entry")
)

const (
	magic         = "drawbridge-backup\n"
	formatVersion = 1
	kdfArgon2id   = 1
	saltSize      = 16
	checkSize     = 32
	headerSize    = len(magic) + 4 + 4 + 4 + saltSize + checkSize + chacha20poly1305.NonceSizeX + 8

	infoKey   = "drawbridge-backup-v1 encryption key"
	infoCheck = "drawbridge-backup-v1 passphrase check"
)

// The archive key comes from the passphrase through the keyring's own
// argon2id parameters (store.KDF, stored in each archive's header), and
// by default at the keyring's cost (store.DefaultKDF): the state dir's
// keyring already lets anyone holding the volume test passphrases at that
// cost, so a stronger setting here would protect nothing more. A wrong
// passphrase is the keyring's store.ErrWrongPassphrase too.

// Limits a header may ask for: a crafted header must not make the reader
// spend unbounded memory or time before the passphrase is even checked.
const (
	maxKDFTime      = 16
	maxKDFMemoryKiB = 1 << 20 // 1 GiB
	maxKDFThreads   = 64
)

func checkKDF(k store.KDF) error { return checkKDFMax(k, maxKDFMemoryKiB) }

func checkKDFMax(k store.KDF, maxMemoryKiB uint32) error {
	switch {
	case k.Time < 1 || k.Time > maxKDFTime:
		return fmt.Errorf("argon2id passes %d out of range 1..%d", k.Time, maxKDFTime)
	case k.Threads < 1 || k.Threads > maxKDFThreads:
		return fmt.Errorf("argon2id threads %d out of range 1..%d", k.Threads, maxKDFThreads)
	case k.MemoryKiB < 8*uint32(k.Threads) || k.MemoryKiB > maxMemoryKiB:
		return fmt.Errorf("argon2id memory %d KiB out of range %d..%d", k.MemoryKiB, 8*uint32(k.Threads), maxMemoryKiB)
	}
	return nil
}

type header struct {
	kdf    store.KDF
	salt   [saltSize]byte
	check  [checkSize]byte
	nonce  [chacha20poly1305.NonceSizeX]byte
	length uint64 // of the ciphertext, tag included
}

func (h *header) marshal() []byte {
	b := make([]byte, 0, headerSize)
	b = append(b, magic...)
	b = append(b, formatVersion, kdfArgon2id, h.kdf.Threads, 0)
	b = binary.BigEndian.AppendUint32(b, h.kdf.Time)
	b = binary.BigEndian.AppendUint32(b, h.kdf.MemoryKiB)
	b = append(b, h.salt[:]...)
	b = append(b, h.check[:]...)
	b = append(b, h.nonce[:]...)
	return binary.BigEndian.AppendUint64(b, h.length)
}

// parseHeader reads a header of exactly headerSize bytes and checks every
// field against what this version writes and the limits above, with
// argon2id memory at most maxMemoryKiB (tests and fuzzing lower it).
func parseHeader(b []byte, maxMemoryKiB uint32) (header, error) {
	var h header
	if len(b) != headerSize {
		return h, fmt.Errorf("%w: header is %d bytes, want %d", ErrCorrupt, len(b), headerSize)
	}
	if string(b[:len(magic)]) != magic {
		return h, ErrNotArchive
	}
	b = b[len(magic):]
	if b[0] != formatVersion {
		return h, fmt.Errorf("archive format version %d is not supported (this drawbridge reads version %d): restore it with the drawbridge release that wrote it", b[0], formatVersion)
	}
	if b[1] != kdfArgon2id || b[3] != 0 {
		return h, fmt.Errorf("%w: header: unknown key derivation %d/%d", ErrCorrupt, b[1], b[3])
	}
	h.kdf = store.KDF{Threads: b[2], Time: binary.BigEndian.Uint32(b[4:]), MemoryKiB: binary.BigEndian.Uint32(b[8:])}
	if err := checkKDFMax(h.kdf, maxMemoryKiB); err != nil {
		return h, fmt.Errorf("%w: header: %w", ErrCorrupt, err)
	}
	b = b[12:]
	b = b[copy(h.salt[:], b):]
	b = b[copy(h.check[:], b):]
	b = b[copy(h.nonce[:], b):]
	h.length = binary.BigEndian.Uint64(b)
	if h.length < chacha20poly1305.Overhead || h.length > MaxSize-uint64(headerSize) {
		return h, fmt.Errorf("%w: header declares %d bytes of ciphertext; an archive is at most %d bytes", ErrCorrupt, h.length, MaxSize)
	}
	return h, nil
}

// deriveKeys returns the encryption key and the passphrase check.
func deriveKeys(passphrase, salt []byte, k store.KDF) (key, check []byte, err error) {
	master := argon2.IDKey(passphrase, salt, k.Time, k.MemoryKiB, k.Threads, 32)
	defer clear(master)
	// argon2id's work area (64 MiB by default) is garbage now: hand it back
	// before a restore derives the CA's own key, so the two never add up
	// (a restore inside the edge's 128 MiB container limit).
	debug.FreeOSMemory()
	if key, err = hkdf.Expand(sha256.New, master, infoKey, chacha20poly1305.KeySize); err != nil {
		return nil, nil, err
	}
	if check, err = hkdf.Expand(sha256.New, master, infoCheck, checkSize); err != nil {
		clear(key)
		return nil, nil, err
	}
	return key, check, nil
}

// seal encrypts plain into w as a complete archive.
func seal(w io.Writer, plain, passphrase []byte, k store.KDF) error {
	if err := checkKDF(k); err != nil {
		return fmt.Errorf("sealing archive: %w", err)
	}
	if n := headerSize + len(plain) + chacha20poly1305.Overhead; n > MaxSize {
		return fmt.Errorf("sealing archive: it would be %d bytes, more than the limit of %d", n, MaxSize)
	}
	h := header{kdf: k, length: uint64(len(plain) + chacha20poly1305.Overhead)}
	if _, err := rand.Read(h.salt[:]); err != nil {
		return err
	}
	if _, err := rand.Read(h.nonce[:]); err != nil {
		return err
	}
	key, check, err := deriveKeys(passphrase, h.salt[:], k)
	if err != nil {
		return fmt.Errorf("sealing archive: %w", err)
	}
	defer clear(key)
	copy(h.check[:], check)
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return err
	}
	hb := h.marshal()
	out := aead.Seal(hb, h.nonce[:], plain, hb)
	_, err = w.Write(out)
	return err
}

// unseal reads a complete archive from r and returns its plaintext. Every
// check that needs no key (magic, version, limits, length) comes before
// the key derivation; nothing is allocated beyond what r really holds.
func unseal(r io.Reader, passphrase []byte, maxMemoryKiB uint32) ([]byte, error) {
	hb := make([]byte, headerSize)
	if n, err := io.ReadFull(r, hb); err != nil {
		if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			return nil, err
		}
		if m := min(n, len(magic)); n == 0 || !bytes.Equal(hb[:m], []byte(magic[:m])) {
			return nil, ErrNotArchive
		}
		return nil, fmt.Errorf("%w: the file ends inside the header (%d of %d bytes)", ErrCorrupt, n, headerSize)
	}
	h, err := parseHeader(hb, maxMemoryKiB)
	if err != nil {
		return nil, err
	}
	// io.ReadAll grows with what arrives, so a header that lies about the
	// length costs no more memory than the file really has.
	ct, err := io.ReadAll(io.LimitReader(r, int64(min(h.length, MaxSize))+1)) //nolint:gosec // G115: clamped to the archive limit
	if err != nil {
		return nil, err
	}
	switch {
	case uint64(len(ct)) < h.length:
		return nil, fmt.Errorf("%w: the archive is truncated: %d of %d bytes of ciphertext", ErrCorrupt, len(ct), h.length)
	case uint64(len(ct)) > h.length:
		return nil, fmt.Errorf("%w: data follows the end of the archive", ErrCorrupt)
	}
	key, check, err := deriveKeys(passphrase, h.salt[:], h.kdf)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	if subtle.ConstantTimeCompare(check, h.check[:]) != 1 {
		return nil, store.ErrWrongPassphrase
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, err
	}
	plain, err := aead.Open(ct[:0], h.nonce[:], ct, hb)
	if err != nil {
		return nil, fmt.Errorf("%w: authentication failed", ErrCorrupt)
	}
	return plain, nil
}
