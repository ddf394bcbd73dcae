package store

import (
	"bytes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime/debug"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

// MinPassphraseLength is the shortest passphrase accepted, in bytes.
const MinPassphraseLength = 16

// ErrWrongPassphrase is returned when the passphrase does not open the
// state directory's keyring.
var ErrWrongPassphrase = errors.New("wrong passphrase")

// sealMagic starts every sealed value, so a sealed file is recognisable and
// a clear one is never mistaken for it.
var sealMagic = []byte("drawbridge-sealed-v1\n")

// kdfParams are the argon2id parameters (RFC 9106), stored in the keyring so
// they can be raised later without breaking old state.
type kdfParams struct {
	Algorithm string `json:"algorithm"`
	Time      uint32 `json:"time"`
	MemoryKiB uint32 `json:"memory_kib"`
	Threads   uint8  `json:"threads"`
	Salt      []byte `json:"salt"`
}

// KDF are the argon2id parameters (RFC 9106) of a new keyring.
type KDF struct {
	Time      uint32 // passes
	MemoryKiB uint32
	Threads   uint8
}

// DefaultKDF follows RFC 9106's second recommended option (64 MiB), with
// three passes: about a quarter of a second on one core, once per start.
func DefaultKDF() KDF { return KDF{Time: 3, MemoryKiB: 64 * 1024, Threads: 2} }

func (k KDF) params() kdfParams {
	return kdfParams{Algorithm: "argon2id", Time: k.Time, MemoryKiB: k.MemoryKiB, Threads: k.Threads}
}

// keyringFile is stored in clear beside the sealed values: it holds no
// secret, only what is needed to derive the key and check the passphrase.
type keyringFile struct {
	Version int       `json:"version"`
	KDF     kdfParams `json:"kdf"`
	// Check is a known plaintext sealed under the derived key; failing to
	// open it means the passphrase is wrong.
	Check []byte `json:"check"`
}

const (
	keyringVersion = 1
	checkName      = "drawbridge/keyring-check"
	checkPlain     = "drawbridge keyring check v1"
)

// sealer encrypts values with XChaCha20-Poly1305 under the derived key. The
// storage key is the additional data, so a sealed value moved to another
// name does not open.
type sealer struct {
	aead cipher.AEAD
	key  []byte // the derived key, kept to wrap it during a re-seal
	// passSum is SHA-256 of the salt and the passphrase the key was derived
	// from (zero for a key read from a re-seal journal): a re-seal to the
	// same passphrase is then known without deriving again. It reveals no
	// more than the key beside it.
	passSum [sha256.Size]byte
}

// derivedFrom reports whether s's key was derived from passphrase.
func (s *sealer) derivedFrom(passphrase []byte, salt []byte) bool {
	if s.passSum == ([sha256.Size]byte{}) {
		return false
	}
	sum := passphraseSum(passphrase, salt)
	return subtle.ConstantTimeCompare(sum[:], s.passSum[:]) == 1
}

func passphraseSum(passphrase, salt []byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write(salt)
	h.Write(passphrase)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

func newSealer(passphrase []byte, p kdfParams) (*sealer, error) {
	if p.Algorithm != "argon2id" {
		return nil, fmt.Errorf("keyring: unknown key derivation %q", p.Algorithm)
	}
	if len(p.Salt) < 16 || p.Time == 0 || p.Threads == 0 || p.MemoryKiB < 8*uint32(p.Threads) {
		return nil, errors.New("keyring: key derivation parameters are out of range")
	}
	key := argon2.IDKey(passphrase, p.Salt, p.Time, p.MemoryKiB, p.Threads, chacha20poly1305.KeySize)
	releaseKDFMemory()
	s, err := sealerFromKey(key)
	if err == nil {
		s.passSum = passphraseSum(passphrase, p.Salt)
	}
	return s, err
}

// releaseKDFMemory hands argon2id's work area (MemoryKiB, 64 MiB by
// default) back to the operating system now. It is garbage once the key
// is derived, but the runtime would keep it mapped until its scavenger got
// round to it (minutes) or reuse it as heap: the gateway's resident set
// would stay 64 MiB above what it uses, and a second derivation before
// the next GC would double it. One forced GC per derivation, which happens
// once per start and per passphrase change.
func releaseKDFMemory() { debug.FreeOSMemory() }

func sealerFromKey(key []byte) (*sealer, error) {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	return &sealer{aead: aead, key: key}, nil
}

func additionalData(name string) []byte {
	return append([]byte("drawbridge-seal-v1\x00"), name...)
}

func (s *sealer) seal(name string, plain []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize(), len(sealMagic)+s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("sealing %s: %w", name, err)
	}
	out := append(append([]byte{}, sealMagic...), nonce...)
	return s.aead.Seal(out, nonce, plain, additionalData(name)), nil
}

func (s *sealer) open(name string, sealed []byte) ([]byte, error) {
	rest, ok := bytes.CutPrefix(sealed, sealMagic)
	if !ok {
		return nil, fmt.Errorf("opening %s: not a sealed value", name)
	}
	if len(rest) < s.aead.NonceSize()+s.aead.Overhead() {
		return nil, fmt.Errorf("opening %s: sealed value is truncated", name)
	}
	nonce, ct := rest[:s.aead.NonceSize()], rest[s.aead.NonceSize():]
	plain, err := s.aead.Open(nil, nonce, ct, additionalData(name))
	if err != nil {
		return nil, fmt.Errorf("opening %s: sealed value is corrupt or was sealed with another passphrase", name)
	}
	return plain, nil
}

func isSealed(v []byte) bool { return bytes.HasPrefix(v, sealMagic) }

// newKeyring derives a key from passphrase with fresh salt.
func newKeyring(passphrase []byte, p kdfParams) (*sealer, []byte, error) {
	p.Salt = make([]byte, 16)
	if _, err := rand.Read(p.Salt); err != nil {
		return nil, nil, err
	}
	s, err := newSealer(passphrase, p)
	if err != nil {
		return nil, nil, err
	}
	check, err := s.seal(checkName, []byte(checkPlain))
	if err != nil {
		return nil, nil, err
	}
	data, err := json.MarshalIndent(keyringFile{Version: keyringVersion, KDF: p, Check: check}, "", "  ")
	if err != nil {
		return nil, nil, err
	}
	return s, data, nil
}

// openKeyring derives the key from passphrase and checks it against data.
func openKeyring(passphrase, data []byte) (*sealer, error) {
	var kf keyringFile
	if err := json.Unmarshal(data, &kf); err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	if kf.Version != keyringVersion {
		return nil, fmt.Errorf("keyring: version %d is not supported (want %d)", kf.Version, keyringVersion)
	}
	s, err := newSealer(passphrase, kf.KDF)
	if err != nil {
		return nil, err
	}
	plain, err := s.open(checkName, kf.Check)
	if err != nil || string(plain) != checkPlain {
		return nil, ErrWrongPassphrase
	}
	return s, nil
}

// ReadPassphrase reads a passphrase from path (a Docker secret), dropping
// one trailing newline. The error says what to do; it never holds the
// content.
func ReadPassphrase(path string) ([]byte, error) {
	b, err := os.ReadFile(path) //nolint:gosec // G304: the operator configures the passphrase file
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("passphrase_file %q does not exist: create it (for example a Docker secret) with at least %d bytes, e.g. `openssl rand -base64 32 > FILE`: %w",
			path, MinPassphraseLength, err)
	}
	if err != nil {
		return nil, fmt.Errorf("reading passphrase_file %q: %w", path, err)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) < MinPassphraseLength {
		clear(b)
		return nil, fmt.Errorf("passphrase_file %q: passphrase is %d bytes, need at least %d: write a longer one, e.g. `openssl rand -base64 32 > FILE`",
			path, len(b), MinPassphraseLength)
	}
	return b, nil
}
