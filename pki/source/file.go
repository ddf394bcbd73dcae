package source

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/drawbridge-proxy/drawbridge/pki/cert"
	"github.com/drawbridge-proxy/drawbridge/pki/metrics"
	"github.com/drawbridge-proxy/drawbridge/pki/part"
	"github.com/drawbridge-proxy/drawbridge/telemetry/configerr"
)

// Files are renewed by their owner, as certbot does, with a third of their
// life left; the renewal gauges say so, checked once a minute.
const (
	fileRenewalRatio  = 1.0 / 3
	fileCheckInterval = time.Minute
)

// FileSourceConfig names a certificate and key on disk (a user's own
// certificate for the public edge).
type FileSourceConfig struct {
	// CertFile is the PEM certificate chain, leaf first. Zero: invalid.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM private key. Zero: invalid.
	KeyFile string `yaml:"key_file"`
	// PollInterval is how often both files are re-read; a changed, valid
	// pair replaces the served one. Polling by content catches in-place
	// writes (Compose secrets), renames and symlink swaps alike.
	// Zero: 5s.
	PollInterval time.Duration `yaml:"poll_interval"`
}

// Defaults fills zero fields.
func (c *FileSourceConfig) Defaults() {
	if c.PollInterval == 0 {
		c.PollInterval = 5 * time.Second
	}
}

// Validate returns every problem at once as a configerr.List.
func (c *FileSourceConfig) Validate() error {
	var errs configerr.List
	if c.CertFile == "" {
		errs.Add("cert_file", "required")
	}
	if c.KeyFile == "" {
		errs.Add("key_file", "required")
	}
	if c.PollInterval < 100*time.Millisecond {
		errs.Add("poll_interval", "must be >= 100ms, got %v", c.PollInterval)
	}
	return errs.Err()
}

// FileSource serves a certificate from files and reloads it when they
// change. A bad new pair (unreadable, mismatched, expired) is refused and
// logged; the previous one stays in service.
type FileSource struct {
	cfg     FileSourceConfig
	log     *slog.Logger
	metrics *metrics.Metrics
	now     func() time.Time

	cert atomic.Pointer[tls.Certificate]

	mu  sync.Mutex // guards sum
	sum [sha256.Size]byte
}

var _ cert.CertSource = (*FileSource)(nil)

// NewFileSource loads the pair once; it fails if the first load fails.
func NewFileSource(cfg FileSourceConfig, deps part.Deps) (*FileSource, error) {
	m, err := metrics.New(deps.Registerer)
	if err != nil {
		return nil, fmt.Errorf("registering metrics: %w", err)
	}
	fs := &FileSource{cfg: cfg, log: deps.Log().With("component", "pki.file_source", "cert_file", cfg.CertFile), metrics: m, now: deps.Now()}
	if _, err := fs.Reload(); err != nil {
		return nil, err
	}
	return fs, nil
}

// GetCertificate implements cert.CertSource.
func (fs *FileSource) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return fs.cert.Load(), nil
}

// Reload reads both files and swaps in the pair if it changed and is
// valid. It reports whether the served certificate changed.
func (fs *FileSource) Reload() (bool, error) {
	certPEM, err := os.ReadFile(fs.cfg.CertFile)
	if err != nil {
		return false, fmt.Errorf("cert_file: %w", err)
	}
	keyPEM, err := os.ReadFile(fs.cfg.KeyFile)
	if err != nil {
		return false, fmt.Errorf("key_file %q: %w", fs.cfg.KeyFile, err)
	}
	defer clear(keyPEM)
	h := sha256.New()
	h.Write(certPEM)
	h.Write(keyPEM)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])

	fs.mu.Lock()
	defer fs.mu.Unlock()
	if sum == fs.sum {
		return false, nil
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// The error of X509KeyPair never holds key bytes.
		return false, fmt.Errorf("cert_file %q and key_file %q: %w", fs.cfg.CertFile, fs.cfg.KeyFile, err)
	}
	if pair.Leaf == nil {
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return false, fmt.Errorf("cert_file %q: %w", fs.cfg.CertFile, err)
		}
	}
	if !fs.now().Before(pair.Leaf.NotAfter) {
		return false, fmt.Errorf("cert_file %q: the certificate expired at %s", fs.cfg.CertFile, pair.Leaf.NotAfter.Format(time.RFC3339))
	}
	fs.sum = sum
	fs.cert.Store(&pair)
	fs.metrics.SetExpiry("leaf", "file:"+fs.cfg.CertFile, pair.Leaf.NotAfter)
	fs.metrics.SetRenewal("leaf", "file:"+fs.cfg.CertFile, metrics.RenewalPoint(pair.Leaf, fileRenewalRatio), fileCheckInterval)
	fs.log.Info("certificate loaded", "subject", pair.Leaf.Subject.CommonName, "expires", pair.Leaf.NotAfter)
	return true, nil
}

// Run polls the files every poll_interval until ctx ends.
func (fs *FileSource) Run(ctx context.Context) error {
	return part.Loop(ctx, fs.log, "reloading certificate files", fs.cfg.PollInterval, func(context.Context) error {
		_, err := fs.Reload()
		return err
	})
}
