package certfiles

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/caddyserver/certmagic"

	"github.com/drawbridge-proxy/drawbridge/internal/atomicfile"
	"github.com/drawbridge-proxy/drawbridge/pki/cert"
	"github.com/drawbridge-proxy/drawbridge/pki/identity"
)

// The files a LeafWriter writes in its directory.
const (
	CertFile   = "tls.crt" // the leaf, then the intermediate (and a cross certificate during a rotation)
	KeyFile    = "tls.key"
	BundleFile = "ca.crt" // the trust bundle
)

// LeafWriter writes a certificate, its key and the trust bundle to a
// directory, each only when it changed.
type LeafWriter struct {
	Dir     string
	KeyMode os.FileMode // of KeyFile; the others are 0644
	Owner   *Owner      // of every file; nil: the calling user
	Log     *slog.Logger

	certSum, bundleSum [32]byte
}

// Write writes m's trust bundle, then id's key and certificate, each when
// it differs from what this writer last wrote.
func (w *LeafWriter) Write(m *cert.Manager, id identity.ID) error {
	bundle := m.TrustBundle().PEM()
	if sum := sha256.Sum256(bundle); sum != w.bundleSum {
		// The bundle first: peers' certificates may chain to a new root
		// before this service's own certificate does.
		if err := WriteFile(filepath.Join(w.Dir, BundleFile), bundle, 0o644, w.Owner); err != nil {
			return err
		}
		w.bundleSum = sum
		w.Log.Info("trust bundle written", "file", filepath.Join(w.Dir, BundleFile), "roots", len(m.TrustBundle().Roots()))
	}
	c, err := m.Certificate(id)
	if err != nil {
		return err
	}
	chain := chainPEM(c)
	if sum := sha256.Sum256(chain); sum == w.certSum {
		return nil
	}
	key, err := keyPEM(c)
	if err != nil {
		return err
	}
	defer clear(key)
	// The key before the certificate: a reader between the two sees the
	// new key with the old certificate, a mismatch a TLS server refuses to
	// load (keeping what it has), never an old key with a new certificate
	// silently served.
	if err := WriteFile(filepath.Join(w.Dir, KeyFile), key, w.KeyMode, w.Owner); err != nil {
		return err
	}
	if err := WriteFile(filepath.Join(w.Dir, CertFile), chain, 0o644, w.Owner); err != nil {
		return err
	}
	w.certSum = sha256.Sum256(chain)
	w.Log.Info("certificate written", "identity", id.String(), "dir", w.Dir, "expires", c.Leaf.NotAfter)
	return nil
}

// BundleWriter writes a trust bundle to one file (0644, its directory
// made if missing) when it changed, or when the file is gone.
type BundleWriter struct {
	Path string
	Log  *slog.Logger

	sum [32]byte
}

// Write writes pem to the file unless it is what this writer last wrote
// and the file is still there.
func (w *BundleWriter) Write(pem []byte) error {
	sum := sha256.Sum256(pem)
	if sum == w.sum {
		if _, err := os.Stat(w.Path); err == nil {
			return nil
		}
	}
	if err := os.MkdirAll(filepath.Dir(w.Path), 0o755); err != nil { //nolint:gosec // G301: readers run as other users
		return err
	}
	if err := WriteFile(w.Path, pem, 0o644, nil); err != nil {
		return err
	}
	w.sum = sum
	w.Log.Info("trust bundle written", "file", w.Path)
	return nil
}

func chainPEM(c *tls.Certificate) []byte {
	var b bytes.Buffer
	for _, der := range c.Certificate {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	return b.Bytes()
}

func keyPEM(c *tls.Certificate) ([]byte, error) {
	s, ok := c.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, errors.New("the certificate's key is not a signer")
	}
	return certmagic.PEMEncodePrivateKey(s)
}

// Owner is the numeric owner and group a file is given.
type Owner struct{ UID, GID int }

// ParseOwner parses --chown's "UID:GID"; "" is nil, no owner change.
func ParseOwner(s string) (*Owner, error) {
	if s == "" {
		return nil, nil
	}
	u, g, ok := strings.Cut(s, ":")
	uid, err1 := strconv.Atoi(u)
	gid, err2 := strconv.Atoi(g)
	if !ok || err1 != nil || err2 != nil || uid < 0 || gid < 0 {
		return nil, fmt.Errorf("--chown %q: want numeric UID:GID, e.g. 999:999", s)
	}
	return &Owner{UID: uid, GID: gid}, nil
}

// WriteFile writes data through a temporary file beside path with mode
// (and owner, when set), synced, then renamed over path: readers see the
// old file or the new one, never a part.
func WriteFile(path string, data []byte, mode os.FileMode, owner *Owner) error {
	opts := atomicfile.Options{Mode: mode}
	if owner != nil {
		opts.Prepare = func(f *os.File) error {
			if err := f.Chown(owner.UID, owner.GID); err != nil {
				return fmt.Errorf("--chown needs root: %w", err)
			}
			return nil
		}
	}
	if err := atomicfile.WriteBytes(path, opts, data); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
