package enroll

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/drawbridge-proxy/drawbridge/pki/identity"
	"github.com/drawbridge-proxy/drawbridge/pki/layout"
	"github.com/drawbridge-proxy/drawbridge/pki/metrics"
	"github.com/drawbridge-proxy/drawbridge/pki/part"
	"github.com/drawbridge-proxy/drawbridge/pki/trust"
	"github.com/drawbridge-proxy/drawbridge/telemetry/configerr"
)

// ClientConfig configures an instance without the CA key (a
// sidecar) that gets its certificates from a CA's enrollment endpoint.
type ClientConfig struct {
	// URL of the CA's enrollment endpoint, https://.../v1/pki/enroll.
	// Zero: invalid.
	URL string `yaml:"url"`
	// TokenFile holds the bootstrap token for the first enrollment (a
	// Docker secret). Zero: renew only (a current certificate must exist).
	TokenFile string `yaml:"token_file"`
	// CAFile holds the PEM roots to trust the endpoint with at first
	// contact (`drawbridge ca bundle`). Later the bundle each response
	// carries is used, and kept in storage. Zero: invalid.
	CAFile string `yaml:"ca_file"`
	// TrustDomain of the identities enrolled. Zero: identity.DefaultTrustDomain.
	TrustDomain string `yaml:"trust_domain"`
	// Timeout bounds one enrollment request. Zero: 30s.
	Timeout time.Duration `yaml:"timeout"`
}

// Defaults fills zero fields.
func (c *ClientConfig) Defaults() {
	if c.TrustDomain == "" {
		c.TrustDomain = identity.DefaultTrustDomain
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
}

// Validate returns every problem at once as a configerr.List.
func (c *ClientConfig) Validate() error {
	var errs configerr.List
	if u, err := url.Parse(c.URL); err != nil || u.Scheme != "https" || u.Host == "" {
		errs.Add("url", "must be an https:// URL, got %q", c.URL)
	}
	if c.CAFile == "" {
		errs.Add("ca_file", "required: the PEM trust bundle of the CA (`drawbridge ca bundle`)")
	}
	if err := identity.CheckTrustDomain(c.TrustDomain); err != nil {
		errs.Add("trust_domain", "%v", err)
	}
	if c.Timeout <= 0 {
		errs.Add("timeout", "must be > 0, got %v", c.Timeout)
	}
	return errs.Err()
}

// Client is the client side of enrollment: a certmagic.Issuer (and
// cert.Authority) that gets certificates from a CA's Handler, so
// certmagic manages a sidecar's certificates as it does the gateway's. It
// sends the bootstrap token only when it holds no current certificate for
// the identity; renewals authenticate with the certificate.
type Client struct {
	cfg     ClientConfig
	storage certmagic.Storage
	log     *slog.Logger
	now     func() time.Time

	bundle atomic.Pointer[trust.Bundle]
	reach  reachability
	// current returns the certificate held for an identity (set by the
	// Manager), used to authenticate renewals.
	current atomic.Pointer[func(identity.ID) (*tls.Certificate, error)]

	mu    sync.RWMutex        // guards names
	names map[string][]string // SPIFFE ID -> DNS names
}

var _ certmagic.Issuer = (*Client)(nil)

// NewClient loads the trust bundle (the one kept in storage from the
// last enrollment, else CAFile). cfg must have passed Defaults and Validate.
func NewClient(ctx context.Context, cfg ClientConfig, storage certmagic.Storage, deps part.Deps) (*Client, error) {
	ei := &Client{cfg: cfg, storage: storage, log: deps.Log().With("component", "pki.enroll_client"), now: deps.Now(), names: map[string][]string{}}
	met, err := metrics.New(deps.Registerer)
	if err != nil {
		return nil, fmt.Errorf("registering metrics: %w", err)
	}
	ei.reach.metrics = met
	src := "storage"
	b, err := storage.Load(ctx, layout.EnrollBundleKey)
	if err != nil {
		src = "ca_file"
		if b, err = os.ReadFile(cfg.CAFile); err != nil {
			return nil, fmt.Errorf("ca_file %q: %w: write the CA's trust bundle there (`drawbridge ca bundle`)", cfg.CAFile, err)
		}
	}
	roots, err := trust.ParseCertsPEM(b)
	if err != nil {
		return nil, fmt.Errorf("trust bundle from %s: %w", src, err)
	}
	ei.bundle.Store(trust.NewBundle(roots))
	return ei, nil
}

// IssuerKey implements certmagic.Issuer; enrolled leaves are stored apart
// from locally issued ones.
func (ei *Client) IssuerKey() string { return "drawbridge-enrolled" }

// TrustBundle returns the trust bundle of the last enrollment response
// (or, before the first, of ca_file).
func (ei *Client) TrustBundle() *trust.Bundle { return ei.bundle.Load() }

// TrustDomain returns the trust domain of the identities enrolled.
func (ei *Client) TrustDomain() string { return ei.cfg.TrustDomain }

// Register records the DNS names to ask for in id's certificates.
func (ei *Client) Register(id identity.ID, dnsNames []string) {
	ei.mu.Lock()
	defer ei.mu.Unlock()
	ei.names[id.String()] = slices.Clone(dnsNames)
}

// SetCertificateSource gives the client the certificates held per
// identity (the Manager's), to authenticate renewals with.
func (ei *Client) SetCertificateSource(f func(identity.ID) (*tls.Certificate, error)) {
	ei.current.Store(&f)
}

// Issue implements certmagic.Issuer: it sends csr to the enrollment
// endpoint and keeps the trust bundle that comes back.
func (ei *Client) Issue(ctx context.Context, csr *x509.CertificateRequest) (*certmagic.IssuedCertificate, error) {
	if len(csr.URIs) != 1 {
		return nil, fmt.Errorf("enrollment: CSR must name exactly one SPIFFE ID, got %d URIs", len(csr.URIs))
	}
	id, err := identity.Parse(csr.URIs[0].String())
	if err != nil {
		return nil, fmt.Errorf("enrollment: %w", err)
	}
	ei.mu.RLock()
	dns := ei.names[id.String()]
	ei.mu.RUnlock()
	body, err := json.Marshal(enrollRequest{
		CSR:      string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr.Raw})),
		Identity: id.String(),
		DNSNames: dns,
	})
	if err != nil {
		return nil, err
	}
	resp, err := ei.post(ctx, id, body)
	if err != nil {
		return nil, fmt.Errorf("enrolling %s at %s: %w", id, ei.cfg.URL, err)
	}
	chain, err := trust.ParseCertsPEM([]byte(resp.Chain))
	if err != nil || len(chain[0].URIs) != 1 || chain[0].URIs[0].String() != id.String() {
		return nil, fmt.Errorf("enrolling %s at %s: the response holds no certificate for it", id, ei.cfg.URL)
	}
	if err := ei.keepBundle(ctx, []byte(resp.TrustBundle)); err != nil {
		ei.log.Warn("enrollment response: trust bundle not kept", "err", err)
	}
	return &certmagic.IssuedCertificate{Certificate: []byte(resp.Chain)}, nil
}

func (ei *Client) post(ctx context.Context, id identity.ID, body []byte) (*enrollResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, ei.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ei.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: ei.bundle.Load().Pool(), Time: ei.now}
	if cert := ei.currentCert(id); cert != nil {
		tlsCfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	} else if ei.cfg.TokenFile != "" {
		tok, err := readToken(ei.cfg.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("token_file: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+string(tok))
		clear(tok)
	} else {
		return nil, errors.New("no current certificate to renew with and no token_file to enroll with")
	}
	tr := &http.Transport{TLSClientConfig: tlsCfg, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	res, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		ei.reach.failed(ei.now(), err)
		return nil, err
	}
	defer res.Body.Close()
	ei.reach.answered(ei.now())
	data, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("refused with %s", res.Status)
	}
	var out enrollResponse
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("decoding response: %w", err)
	}
	return &out, nil
}

// currentCert returns a still-valid certificate held for id, or nil.
func (ei *Client) currentCert(id identity.ID) *tls.Certificate {
	f := ei.current.Load()
	if f == nil {
		return nil
	}
	c, err := (*f)(id)
	if err != nil || c.Leaf == nil || !ei.now().Before(c.Leaf.NotAfter) {
		return nil
	}
	return c
}

func (ei *Client) keepBundle(ctx context.Context, pemBytes []byte) error {
	roots, err := trust.ParseCertsPEM(pemBytes)
	if err != nil {
		return err
	}
	nb := trust.NewBundle(roots)
	if nb.Equal(ei.bundle.Load()) {
		return nil
	}
	if err := ei.storage.Store(ctx, layout.EnrollBundleKey, nb.PEM()); err != nil {
		return err
	}
	ei.bundle.Store(nb)
	ei.log.Info("trust bundle updated from the CA", "roots", len(roots))
	return nil
}
