package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/drawbridge-proxy/drawbridge/cmd/drawbridge/internal/config"
	"github.com/drawbridge-proxy/drawbridge/cmd/drawbridge/internal/secret"
	"github.com/drawbridge-proxy/drawbridge/cmd/drawbridge/internal/tlswire"
	"github.com/drawbridge-proxy/drawbridge/pki"
	"github.com/drawbridge-proxy/drawbridge/pki/cert"
	"github.com/drawbridge-proxy/drawbridge/pki/enroll"
	"github.com/drawbridge-proxy/drawbridge/telemetry/status"
)

// gatewayPKI is the PKI of a running gateway and what is built on it.
// Without a pki section it holds only the TLS provider of listeners with
// certificate files (openFilesTLS).
type gatewayPKI struct {
	pki    *pki.PKI          // nil without a pki section
	cfg    *config.PKIConfig // nil without a pki section
	tls    *tlswire.Provider
	enroll *enrollServer // nil without pki.enrollment_listener
}

// openFilesTLS is openPKI for a file without a pki section: listeners
// serve the operator's certificate files and verify clients against
// client_ca_file, with no CA of drawbridge's at all.
func openFilesTLS(f *config.File, log *slog.Logger, obs *observability) (*gatewayPKI, error) {
	tp, err := tlswire.New(f, nil, tlswire.Deps{Logger: log, Registerer: obs.registry})
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	return &gatewayPKI{tls: tp}, nil
}

// openPKI opens the state dir with the watched passphrase, builds the CA
// (or the enrollment client), plans and obtains every certificate the
// configuration needs, and binds the enrollment listener.
func openPKI(ctx context.Context, f *config.File, log *slog.Logger, obs *observability, secrets *secret.Watcher) (*gatewayPKI, error) {
	pass, err := watchPassphrase(secrets, f.PKI.PassphraseFile, log)
	if err != nil {
		return nil, err
	}
	deps := pki.Deps{Logger: log, Registerer: obs.registry, Passphrase: pass.s.Value()}
	p, err := pki.Open(ctx, f.PKI.Config, deps)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	pass.storage.Store(p.Storage)
	gp := &gatewayPKI{pki: p, cfg: f.PKI}
	gp.tls, err = tlswire.New(f, p.Manager, tlswire.Deps{Logger: log, Registerer: obs.registry, Storage: p.Storage})
	if err == nil {
		err = gp.tls.Manage(ctx)
	}
	if err == nil && f.PKI.EnrollmentListener.Address != "" {
		gp.enroll, err = newEnrollServer(f.PKI.EnrollmentListener.Address, gp, log)
	}
	if err != nil {
		gp.close()
		return nil, fmt.Errorf("pki: %w", err)
	}
	return gp, nil
}

// run runs the CA's maintenance, certificate file reloads and ACME, and
// the enrollment listener until ctx ends.
func (gp *gatewayPKI) run(ctx context.Context) error {
	errs := make(chan error, 3)
	go func() {
		if gp.pki == nil {
			errs <- nil
			return
		}
		errs <- gp.pki.Run(ctx)
	}()
	go func() { errs <- gp.tls.Run(ctx) }()
	go func() {
		if gp.enroll == nil {
			errs <- nil
			return
		}
		errs <- gp.enroll.run(ctx)
	}()
	return errors.Join(<-errs, <-errs, <-errs)
}

// close stops certificate maintenance. It is idempotent.
func (gp *gatewayPKI) close() {
	if gp == nil {
		return
	}
	if gp.enroll != nil {
		gp.enroll.close()
	}
	if gp.tls != nil {
		gp.tls.Close()
	}
	if gp.pki != nil {
		_ = gp.pki.Close()
	}
}

// ready is the readiness check "certificates": every identity the
// configuration needs holds a certificate, and none of those held is
// unusable (invalid now, or expiring before the next check could renew it:
// the status page's rule). An overdue renewal alone keeps the gateway
// ready: the certificate still serves while the renewal is retried.
func (gp *gatewayPKI) ready() error {
	var errs []error
	if gp.pki != nil {
		errs = append(errs, gp.pki.Manager.Ready())
	}
	now := time.Now()
	for _, c := range gp.certs() {
		if c.Unusable(now) {
			errs = append(errs, errors.New(c.Problem(now)))
		}
	}
	return errors.Join(errs...)
}

// certs lists every certificate drawbridge holds for the status page:
// leaves, the intermediate, the roots of the trust bundle, and edge
// certificates from files.
func (gp *gatewayPKI) certs() []status.Cert {
	var out []status.Cert
	if gp.pki != nil {
		out = gp.pkiCerts()
	}
	// Certificate files are renewed by their owner, expected (as certbot
	// and certmagic do) with a third of their life left; checked each minute.
	for _, s := range gp.tls.Sources() {
		c := s.Cert
		out = append(out, status.Cert{Name: s.Name, Subject: c.Subject.CommonName, Issuer: c.Issuer.CommonName,
			NotBefore: c.NotBefore, NotAfter: c.NotAfter, RenewAt: renewAt(c.NotBefore, c.NotAfter, pki.DefaultRenewalRatio),
			CheckInterval: pki.DefaultCheckInterval})
	}
	return out
}

// renewAt is the renewal point of a certificate renewed with ratio of its
// life left.
func renewAt(notBefore, notAfter time.Time, ratio float64) time.Time {
	return notAfter.Add(-time.Duration(float64(notAfter.Sub(notBefore)) * ratio))
}

// pkiCerts lists the leaves, the intermediate and the roots, each with
// its renewal point: the leaves and the intermediate renew with
// renewal_ratio of their life left, the active root rotates
// root_rotate_before its expiry; a retiring root and another CA's roots
// are not renewed here.
func (gp *gatewayPKI) pkiCerts() []status.Cert {
	var out []status.Cert
	ratio, check := gp.cfg.RenewalRatio, gp.cfg.CheckInterval
	for _, h := range gp.pki.Manager.Held() {
		out = append(out, status.Cert{Name: "leaf " + h.Identity, Subject: h.Identity, Issuer: h.Issuer,
			NotBefore: h.NotBefore, NotAfter: h.NotAfter, RenewAt: renewAt(h.NotBefore, h.NotAfter, ratio), CheckInterval: check})
	}
	if gp.pki.CA != nil {
		st := gp.pki.CA.Status()
		in := st.Intermediate
		out = append(out, status.Cert{Name: "intermediate CA", Subject: in.Subject, NotBefore: in.NotBefore, NotAfter: in.NotAfter,
			RenewAt: renewAt(in.NotBefore, in.NotAfter, ratio), CheckInterval: check})
		for _, r := range st.Roots {
			c := status.Cert{Name: "root CA (retiring)", Subject: r.Subject, NotBefore: r.NotBefore, NotAfter: r.NotAfter, CheckInterval: check}
			if r.Active {
				c.Name, c.RenewAt = "root CA", r.NotAfter.Add(-gp.cfg.RootRotateBefore)
			}
			out = append(out, c)
		}
	} else {
		for _, r := range gp.pki.Manager.TrustBundle().Roots() {
			out = append(out, status.Cert{Name: "trusted root CA", Subject: r.Subject.CommonName,
				NotBefore: r.NotBefore, NotAfter: r.NotAfter, CheckInterval: check})
		}
	}
	return out
}

// caContact says whether the CA answers, on an enrolling instance (nil on
// the CA): the status page's "CA unreachable since ...".
func (gp *gatewayPKI) caContact() *status.CAContact {
	if gp.pki == nil {
		return nil
	}
	c, ok := gp.pki.Contact()
	if !ok {
		return nil
	}
	return &status.CAContact{URL: c.URL, UnreachableSince: c.UnreachableSince, LastContact: c.LastContact, LastError: c.LastError}
}

// enrollServer serves the CA's enrollment endpoint over TLS 1.3 with the
// gateway's own certificate; a client certificate is optional.
type enrollServer struct {
	srv *http.Server
	ln  net.Listener
}

func newEnrollServer(addr string, gp *gatewayPKI, log *slog.Logger) (*enrollServer, error) {
	if gp.pki.EnrollHandler == nil {
		return nil, errors.New("enrollment_listener: this instance holds no CA")
	}
	cfg, err := gp.tls.EnrollmentTLS()
	if err != nil {
		return nil, fmt.Errorf("enrollment_listener: %w", err)
	}
	var lc net.ListenConfig
	raw, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("enrollment_listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle(enroll.Path, gp.pki.EnrollHandler)
	return &enrollServer{
		ln: gp.pki.Manager.Listener(raw, cfg, cert.ListenerOptions{HandshakeTimeout: 10 * time.Second}),
		srv: &http.Server{
			Handler: http.MaxBytesHandler(mux, 1<<20), ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute,
			ErrorLog: slog.NewLogLogger(log.With("listener", "enrollment").Handler(), slog.LevelWarn),
		},
	}, nil
}

func (e *enrollServer) run(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- e.srv.Serve(e.ln) }()
	select {
	case err := <-done:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("enrollment listener: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = e.srv.Shutdown(sctx)
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("enrollment listener: %w", err)
	}
	return nil
}

func (e *enrollServer) close() {
	_ = e.srv.Close()
	_ = e.ln.Close()
}
