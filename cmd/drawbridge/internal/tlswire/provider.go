package tlswire

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/drawbridge-proxy/drawbridge/cmd/drawbridge/internal/config"
	"github.com/drawbridge-proxy/drawbridge/pki/cert"
	"github.com/drawbridge-proxy/drawbridge/pki/identity"
	"github.com/drawbridge-proxy/drawbridge/pki/part"
	"github.com/drawbridge-proxy/drawbridge/pki/source"
	"github.com/drawbridge-proxy/drawbridge/proxy"
)

// Deps are what a Provider is given besides the Manager.
type Deps struct {
	// Logger receives the file and ACME sources' logs. Nil discards.
	Logger *slog.Logger
	// Registerer receives the sources' certificate expiry metrics. Nil: none.
	Registerer prometheus.Registerer
	// Storage keeps ACME accounts and certificates (the sealed storage).
	// Nil: listeners with certificate acme are refused.
	Storage certmagic.Storage
}

// Provider is the data plane's TLS provider over a cert.Manager.
type Provider struct {
	m     *cert.Manager
	pcfg  *config.PKIConfig
	hosts map[string]string // upstream -> the host name its targets share
	own   identity.ID
	log   *slog.Logger

	acme  *source.ACME // nil: no listener uses acme
	close sync.Once

	mu     sync.Mutex                    // guards the following fields (Update changes them on reload)
	plans  []plan                        // identities to manage, in a stable order
	files  map[string]*source.FileSource // by listener
	fileOf map[string]string             // listener -> "cert_file|key_file" its source reads
	runCtx context.Context               // set by Run: sources added by Update run under it
	logDep Deps
}

// plan is one identity and the union of the DNS names its uses need.
type plan struct {
	id  identity.ID
	dns []string
}

var (
	_ proxy.TLSProvider       = (*Provider)(nil)
	_ proxy.HandshakeObserver = (*Provider)(nil)
)

// New plans the identities f needs and loads the file certificate
// sources. f must have been loaded (defaults filled, validated) and have a
// pki section. Call Manage before the data plane takes traffic, Run for
// the sources' reloads, Close when done.
//
// Without a pki section m must be nil: the Provider then serves only
// listeners with certificate: files (and client_ca_file for mutual), as
// the configuration's validation ensured.
func New(f *config.File, m *cert.Manager, deps Deps) (*Provider, error) {
	if (f.PKI == nil) != (m == nil) {
		return nil, errors.New("tlswire: a Manager goes with a pki section, and only with one")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Provider{m: m, pcfg: f.PKI, log: deps.Logger, hosts: map[string]string{},
		files: map[string]*source.FileSource{}, fileOf: map[string]string{}, logDep: deps}
	if f.PKI != nil {
		p.own = f.PKI.OwnID()
		p.want(p.own, f.PKI.EnrollmentListener.Names)
	}
	var acmeNames []string
	for _, name := range slices.Sorted(maps.Keys(f.Listeners)) {
		l := f.Listeners[name]
		if l.TLS.Mode != proxy.TLSServer && l.TLS.Mode != proxy.TLSMutual {
			continue
		}
		switch l.TLS.Certificate {
		case proxy.CertificateInternal:
			id, dns, err := f.PKI.CertNames(l.TLS.Names)
			if err != nil {
				return nil, fmt.Errorf("listeners.%s.tls.%w", name, err)
			}
			p.want(id, dns)
		case proxy.CertificateFiles:
			fc := source.FileSourceConfig{CertFile: l.TLS.CertFile, KeyFile: l.TLS.KeyFile}
			fc.Defaults()
			fs, err := source.NewFileSource(fc, part.Deps{Logger: deps.Logger, Registerer: deps.Registerer})
			if err != nil {
				return nil, fmt.Errorf("listeners.%s.tls: %w", name, err)
			}
			p.files[name] = fs
			p.fileOf[name] = l.TLS.CertFile + "|" + l.TLS.KeyFile
		case proxy.CertificateACME:
			acmeNames = appendNew(acmeNames, l.TLS.Names...)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(f.Upstreams)) {
		u := f.Upstreams[name]
		if u.Protocol != proxy.ProtocolHTTPS && u.Protocol != proxy.ProtocolTLS && u.Protocol != proxy.ProtocolPostgres {
			continue
		}
		p.hosts[name] = config.UpstreamHost(u.Targets)
		id, err := p.clientID(u.TLS)
		if err != nil {
			return nil, fmt.Errorf("upstreams.%s.tls.client_identity: %w", name, err)
		}
		p.want(id, nil)
	}
	if len(acmeNames) > 0 {
		if err := p.newACME(f.PKI, acmeNames, deps); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (p *Provider) newACME(pc *config.PKIConfig, names []string, deps Deps) error {
	if pc.ACME == nil || deps.Storage == nil {
		return errors.New("a listener uses certificate: acme, but there is no pki.acme section")
	}
	ac := *pc.ACME
	ac.Names = appendNew(slices.Clone(ac.Names), names...)
	a, err := source.NewACME(ac, deps.Storage, pc.CheckInterval, part.Deps{Logger: deps.Logger, Registerer: deps.Registerer})
	if err != nil {
		return fmt.Errorf("pki.acme: %w", err)
	}
	p.acme = a
	return nil
}

func (p *Provider) want(id identity.ID, dns []string) {
	for i := range p.plans {
		if p.plans[i].id == id {
			p.plans[i].dns = appendNew(p.plans[i].dns, dns...)
			return
		}
	}
	p.plans = append(p.plans, plan{id: id, dns: appendNew(nil, dns...)})
}

func (p *Provider) clientID(u proxy.UpstreamTLS) (identity.ID, error) {
	if u.ClientIdentity == "" {
		return p.own, nil
	}
	return identity.Parse(u.ClientIdentity)
}

// Update plans what a reloaded configuration needs and obtains every new
// identity's certificate before the data plane swaps to it. A listener
// that is new or reads other certificate files gets its own file source
// (without metrics: those are registered once, at start). ACME names and
// the pki section itself change only with a restart.
func (p *Provider) Update(ctx context.Context, f *config.File) error {
	p.mu.Lock()
	for _, name := range slices.Sorted(maps.Keys(f.Listeners)) {
		l := f.Listeners[name]
		if l.TLS.Mode != proxy.TLSServer && l.TLS.Mode != proxy.TLSMutual {
			continue
		}
		switch l.TLS.Certificate {
		case proxy.CertificateInternal:
			id, dns, err := f.PKI.CertNames(l.TLS.Names)
			if err != nil {
				p.mu.Unlock()
				return fmt.Errorf("listeners.%s.tls.%w", name, err)
			}
			p.want(id, dns)
		case proxy.CertificateFiles:
			key := l.TLS.CertFile + "|" + l.TLS.KeyFile
			if p.fileOf[name] == key {
				continue
			}
			fc := source.FileSourceConfig{CertFile: l.TLS.CertFile, KeyFile: l.TLS.KeyFile}
			fc.Defaults()
			fs, err := source.NewFileSource(fc, part.Deps{Logger: p.logDep.Logger})
			if err != nil {
				p.mu.Unlock()
				return fmt.Errorf("listeners.%s.tls: %w", name, err)
			}
			p.files[name], p.fileOf[name] = fs, key
			if p.runCtx != nil {
				go func() { _ = fs.Run(p.runCtx) }()
			}
		case proxy.CertificateACME:
			if p.acme == nil {
				p.mu.Unlock()
				return fmt.Errorf("listeners.%s.tls: ACME was not set up at start; restart to add it", name)
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(f.Upstreams)) {
		u := f.Upstreams[name]
		if u.Protocol != proxy.ProtocolHTTPS && u.Protocol != proxy.ProtocolTLS && u.Protocol != proxy.ProtocolPostgres {
			continue
		}
		p.hosts[name] = config.UpstreamHost(u.Targets)
		id, err := p.clientID(u.TLS)
		if err != nil {
			p.mu.Unlock()
			return fmt.Errorf("upstreams.%s.tls.client_identity: %w", name, err)
		}
		p.want(id, nil)
	}
	p.mu.Unlock()
	return p.Manage(ctx)
}

// Own is the gateway's own identity.
func (p *Provider) Own() identity.ID { return p.own }

// Manage obtains (or loads) a certificate for every planned identity and
// keeps them renewed. On an enrolling instance this calls the CA. Without
// a pki section there is nothing to obtain.
func (p *Provider) Manage(ctx context.Context) error {
	if p.m == nil {
		return nil
	}
	p.mu.Lock()
	plans := slices.Clone(p.plans)
	p.mu.Unlock()
	var errs []error
	for _, pl := range plans {
		if err := p.m.Manage(ctx, pl.id, pl.dns); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ServerTLS implements proxy.TLSProvider.
func (p *Provider) ServerTLS(l proxy.ListenerConfig) (*tls.Config, error) {
	opts := cert.ServerOptions{Mutual: l.TLS.Mode == proxy.TLSMutual, Profile: profile(l.TLS.Profile)}
	switch l.Protocol {
	case proxy.ProtocolHTTP:
		opts.NextProtos = []string{"h2", "http/1.1"}
	case proxy.ProtocolPostgres:
		opts.NextProtos = []string{"postgresql"} // PostgreSQL 17's direct TLS
	}
	switch l.TLS.Certificate {
	case proxy.CertificateFiles:
		p.mu.Lock()
		opts.Certificates = p.files[l.Name]
		p.mu.Unlock()
	case proxy.CertificateACME:
		if p.acme == nil {
			return nil, errors.New("certificate: acme needs a pki.acme section")
		}
		opts.Certificates = p.acme
	default:
		if p.pcfg == nil {
			return nil, errors.New("certificate: internal needs a pki section")
		}
		id, _, err := p.pcfg.CertNames(l.TLS.Names)
		if err != nil {
			return nil, err
		}
		opts.Identity = id
	}
	// An http listener answers disallowed identities with 403 (the proxy
	// checks); a tcp or postgres one refuses them at the handshake.
	if l.Protocol != proxy.ProtocolHTTP && len(l.TLS.Allow) > 0 {
		al, err := identity.NewAllowList(l.TLS.Allow)
		if err != nil {
			return nil, fmt.Errorf("allow%w", err)
		}
		opts.Allow = al
	}
	if opts.Mutual && l.TLS.ClientCAFile != "" {
		pool, err := readPool(l.TLS.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("client_ca_file: %w", err)
		}
		opts.ClientCAs = pool
	}
	if p.m == nil {
		return cert.StaticServerConfig(opts)
	}
	return p.m.ServerConfig(opts)
}

// readPool reads a PEM bundle of CA certificates.
func readPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path) // #nosec G304 -- the operator names the CA file
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: no PEM certificate", path)
	}
	return pool, nil
}

// ClientTLS implements proxy.TLSProvider.
func (p *Provider) ClientTLS(upstream string, u proxy.UpstreamTLS) (*tls.Config, error) {
	if p.m == nil {
		return nil, errors.New("TLS to an upstream needs a pki section (drawbridge's own certificate)")
	}
	id, err := p.clientID(u)
	if err != nil {
		return nil, err
	}
	opts := cert.ClientOptions{Identity: id, ServerName: u.ServerName, Profile: cert.Internal}
	if u.Identity != "" {
		if opts.ServerID, err = identity.Parse(u.Identity); err != nil {
			return nil, fmt.Errorf("identity: %w", err)
		}
	}
	if opts.ServerID.IsZero() && opts.ServerName == "" {
		// Verify the name all targets share; there is never a config that
		// verifies no name at all.
		p.mu.Lock()
		opts.ServerName = p.hosts[upstream]
		p.mu.Unlock()
	}
	if u.CAFile != "" {
		pool, err := readPool(u.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		// Outside the trust domain: TLS 1.2 is allowed, with Mozilla's
		// intermediate suites.
		opts.Roots, opts.Profile = pool, cert.Edge
	}
	return p.m.ClientConfig(opts)
}

// EnrollmentTLS is the server config of the enrollment listener: the
// gateway's own certificate, a client certificate asked for (renewals)
// but optional (first enrollments carry a token).
func (p *Provider) EnrollmentTLS() (*tls.Config, error) {
	return p.m.ServerConfig(cert.ServerOptions{Identity: p.own, ClientCertOptional: true, Profile: cert.Internal,
		NextProtos: []string{"h2", "http/1.1"}})
}

// Proxy is the Provider as the data plane's TLSProvider. Without a pki
// section it observes no handshakes (there is no Manager to count them),
// so the proxy uses crypto/tls's own listener.
func (p *Provider) Proxy() proxy.TLSProvider {
	if p.m == nil {
		return filesOnly{p}
	}
	return p
}

var _ proxy.HTTPChallenger = (*Provider)(nil)

// HTTPChallengeHandler implements proxy.HTTPChallenger: with ACME on, a
// redirect_to_https listener answers http-01 challenges through it, and
// passes everything else to next (the redirect).
func (p *Provider) HTTPChallengeHandler(next http.Handler) http.Handler {
	if p.acme == nil {
		return next
	}
	return p.acme.HTTPChallengeHandler(next)
}

// filesOnly hides the Provider's HandshakeObserver methods.
type filesOnly struct{ p *Provider }

func (f filesOnly) ServerTLS(l proxy.ListenerConfig) (*tls.Config, error) { return f.p.ServerTLS(l) }
func (f filesOnly) ClientTLS(u string, c proxy.UpstreamTLS) (*tls.Config, error) {
	return f.p.ClientTLS(u, c)
}

// TLSListener implements proxy.HandshakeObserver with the Manager's
// handshaking listener: refusals are counted and logged by reason.
func (p *Provider) TLSListener(_ string, inner net.Listener, cfg *tls.Config, timeout time.Duration) net.Listener {
	return p.m.Listener(inner, cfg, cert.ListenerOptions{HandshakeTimeout: timeout})
}

// HandshakeFailed implements proxy.HandshakeObserver.
func (p *Provider) HandshakeFailed(_ string, remote net.Addr, err error) {
	p.m.HandshakeFailed(remote, err)
}

// Source is a public edge certificate the Provider serves from files or
// ACME, for the status page.
type Source struct {
	Name string // "file:<cert_file>" or "acme:<name>"
	Cert *x509.Certificate
}

// Sources returns the certificates currently served from files and ACME.
func (p *Provider) Sources() []Source {
	p.mu.Lock()
	files := maps.Clone(p.files)
	p.mu.Unlock()
	var out []Source
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if c, _ := files[name].GetCertificate(nil); c != nil && c.Leaf != nil {
			out = append(out, Source{Name: "listener " + name + " (files)", Cert: c.Leaf})
		}
	}
	return out
}

// Run reloads file certificates and, when a listener uses ACME, obtains
// its certificates once the listeners serve (retrying each minute until
// it works), until ctx ends.
func (p *Provider) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	p.mu.Lock()
	p.runCtx = ctx
	for _, fs := range p.files {
		wg.Go(func() { _ = fs.Run(ctx) })
	}
	p.mu.Unlock()
	if p.acme != nil {
		wg.Go(func() { p.runACME(ctx) })
	}
	wg.Wait()
	return nil
}

func (p *Provider) runACME(ctx context.Context) {
	for {
		err := p.acme.Manage(ctx)
		if err == nil || ctx.Err() != nil {
			return
		}
		p.log.Error("ACME: obtaining the edge certificates failed; retrying in a minute", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Minute):
		}
	}
}

// Close stops ACME renewals. It is idempotent.
func (p *Provider) Close() {
	p.close.Do(func() {
		if p.acme != nil {
			_ = p.acme.Close()
		}
	})
}

func profile(name string) cert.Profile {
	if name == proxy.ProfileEdge {
		return cert.Edge
	}
	return cert.Internal
}

func appendNew(list []string, more ...string) []string {
	for _, s := range more {
		if !slices.Contains(list, s) {
			list = append(list, s)
		}
	}
	return list
}
