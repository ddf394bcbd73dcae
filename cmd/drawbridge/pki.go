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
	"github.com/drawbridge-proxy/drawbridge/cmd/drawbridge/internal/tlswire"
	"github.com/drawbridge-proxy/drawbridge/pki"
	"github.com/drawbridge-proxy/drawbridge/pki/secret"
	"github.com/drawbridge-proxy/drawbridge/telemetry/status"
)

// gatewayPKI is the PKI of a running gateway and what is built on it.
// Without a pki section it holds only the TLS provider of listeners with
// certificate files (openFilesTLS).
type gatewayPKI struct {
	pki    *pki.PKI // nil without a pki section
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
	gp := &gatewayPKI{pki: p}
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
// configuration needs holds a certificate valid now.
func (gp *gatewayPKI) ready() error {
	if gp.pki == nil {
		return nil // certificate files were loaded at start; a bad reload keeps the last good pair
	}
	return gp.pki.Manager.Ready()
}

// certs lists every certificate drawbridge holds for the status page:
// leaves, the intermediate, the roots of the trust bundle, and edge
// certificates from files.
func (gp *gatewayPKI) certs() []status.Cert {
	var out []status.Cert
	if gp.pki != nil {
		out = gp.pkiCerts()
	}
	for _, s := range gp.tls.Sources() {
		out = append(out, status.Cert{Name: s.Name, Subject: s.Cert.Subject.CommonName, Issuer: s.Cert.Issuer.CommonName, NotAfter: s.Cert.NotAfter})
	}
	return out
}

// pkiCerts lists the leaves, the intermediate and the roots.
func (gp *gatewayPKI) pkiCerts() []status.Cert {
	var out []status.Cert
	for _, h := range gp.pki.Manager.Held() {
		out = append(out, status.Cert{Name: "leaf " + h.Identity, Subject: h.Identity, Issuer: h.Issuer, NotAfter: h.NotAfter})
	}
	if gp.pki.CA != nil {
		st := gp.pki.CA.Status()
		out = append(out, status.Cert{Name: "intermediate CA", Subject: st.Intermediate.Subject, NotAfter: st.Intermediate.NotAfter})
		for _, r := range st.Roots {
			name := "root CA (retiring)"
			if r.Active {
				name = "root CA"
			}
			out = append(out, status.Cert{Name: name, Subject: r.Subject, NotAfter: r.NotAfter})
		}
	} else {
		for _, r := range gp.pki.Manager.TrustBundle().Roots() {
			out = append(out, status.Cert{Name: "trusted root CA", Subject: r.Subject.CommonName, NotAfter: r.NotAfter})
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
	if gp.pki.Enroll == nil {
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
	mux.Handle(pki.EnrollPath, gp.pki.Enroll)
	return &enrollServer{
		ln: gp.pki.Manager.Listener(raw, cfg, pki.ListenerOptions{HandshakeTimeout: 10 * time.Second}),
		srv: &http.Server{
			Handler: http.MaxBytesHandler(mux, 1<<20), ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute,
			ErrorLog: slog.NewLogLogger(log.With("listener", "enrollment").Handler(), slog.LevelWarn),
		},
	}, nil
}

// Addr is the enrollment listener's bound address.
func (e *enrollServer) Addr() net.Addr { return e.ln.Addr() }

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
