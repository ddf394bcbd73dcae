package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/drawbridge-proxy/drawbridge/cmd/drawbridge/internal/certfiles"
	"github.com/drawbridge-proxy/drawbridge/cmd/drawbridge/internal/config"
	"github.com/drawbridge-proxy/drawbridge/pki"
	"github.com/drawbridge-proxy/drawbridge/pki/identity"
	"github.com/drawbridge-proxy/drawbridge/telemetry"
)

const certSynopsis = `Issue a certificate from the internal CA to files, for a service that speaks
TLS itself (PostgreSQL, nginx, gunicorn): DIR/tls.crt (leaf and chain),
DIR/tls.key (0600) and DIR/ca.crt (the trust bundle, to verify peers with).
The identity is spiffe://<trust_domain>/SERVICE, in the URI SAN and the CN
(PostgreSQL's cert authentication maps it to a user with a pg_ident.conf
regex, see the README).

With --watch it keeps running and rewrites the files in place before the
certificate expires and whenever the trust bundle changes (a root rotation):
each file is replaced atomically (written beside it, then renamed), ca.crt
first, the key before the certificate. Point a volume shared with the
service at DIR and have the service reload its files (PostgreSQL: pg_ctl
reload or SELECT pg_reload_conf(); nginx: nginx -s reload).

PostgreSQL refuses a key file unless it is 0600 and owned by the database
user, or 0640 and owned by root: run the issuer as the database's UID (for
the official image, 999), or as root with --chown 999:999, or --chown 0:999
--key-mode 0640.`

type certOptions struct {
	config, name, out, chown string
	dns                      stringList
	watch                    bool
	keyMode                  uint64
}

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func certCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "issue" {
		fs := newFlagSet("cert issue --config FILE --name SERVICE [--dns NAME ...] --out DIR [--watch]", certSynopsis, stderr)
		if code := parseFlags(fs, args); code >= 0 {
			return code
		}
		fs.Usage()
		return 2
	}
	fs := newFlagSet("cert issue --config FILE --name SERVICE [--dns NAME ...] --out DIR [--watch]", certSynopsis, stderr)
	var o certOptions
	fs.StringVar(&o.config, "config", "", "configuration file (YAML) with a pki section")
	fs.StringVar(&o.name, "name", "", "the service: its identity is spiffe://<trust_domain>/SERVICE")
	fs.Var(&o.dns, "dns", "a DNS name for the certificate (repeatable); each within pki.permitted_dns_domains")
	fs.StringVar(&o.out, "out", "", "directory to write tls.crt, tls.key and ca.crt into")
	fs.BoolVar(&o.watch, "watch", false, "keep running and renew the files in place")
	fs.StringVar(&o.chown, "chown", "", "UID:GID to own the files (needs root), e.g. 999:999 for PostgreSQL")
	keyMode := fs.String("key-mode", "0600", "mode of tls.key: 0600, or 0640 (PostgreSQL accepts it when root owns the key)")
	if code := parseFlags(fs, args[1:]); code >= 0 {
		return code
	}
	var err error
	if o.keyMode, err = strconv.ParseUint(*keyMode, 8, 32); err != nil || (o.keyMode != 0o600 && o.keyMode != 0o640) {
		fmt.Fprintf(stderr, "cert issue: --key-mode %s: want 0600 or 0640\n", *keyMode)
		return 2
	}
	if o.config == "" || o.name == "" || o.out == "" {
		fmt.Fprintln(stderr, "cert issue: --config, --name and --out are required")
		fs.Usage()
		return 2
	}
	if err := issueCert(ctx, o, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "cert issue: %v\n", err)
		return 1
	}
	return 0
}

func issueCert(ctx context.Context, o certOptions, stdout, stderr io.Writer) error {
	owner, err := certfiles.ParseOwner(o.chown)
	if err != nil {
		return err
	}
	f, err := loadPKIConfig(o.config)
	if err != nil {
		return err
	}
	id, err := identity.New(f.PKI.TrustDomain, o.name)
	if err != nil {
		return fmt.Errorf("--name: %w", err)
	}
	// 0755: the service that reads the files (PostgreSQL, nginx) runs as
	// another user and must reach them; the key itself is 0600 or 0640.
	if err := os.MkdirAll(o.out, 0o755); err != nil { //nolint:gosec // G301: see above
		return err
	}
	p, log, err := openFilePKI(ctx, f, stderr)
	if err != nil {
		return err
	}
	defer p.Close()
	if err := p.Manager.Manage(ctx, id, o.dns); err != nil {
		return err
	}
	w := &certfiles.LeafWriter{Dir: o.out, KeyMode: os.FileMode(o.keyMode), Owner: owner, Log: log} //nolint:gosec // G115: 0600 or 0640, checked at parse
	if err := w.Write(p.Manager, id); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s, %s and %s in %s for %s\n", certfiles.CertFile, certfiles.KeyFile, certfiles.BundleFile, o.out, id)
	if !o.watch {
		return nil
	}
	followPKI(ctx, p, f.PKI.CheckInterval, log, "certificate files", func() error { return w.Write(p.Manager, id) })
	return nil
}

// loadPKIConfig loads the configuration at path, which must have a pki
// section and needs nothing else: what the ca, cert and trust-bundle
// commands start from.
func loadPKIConfig(path string) (*config.File, error) {
	return config.LoadFor(path, config.PKIOnly)
}

// openFilePKI opens the PKI of f for a command that writes files from it,
// logging to stderr as f's logging section says.
func openFilePKI(ctx context.Context, f *config.File, stderr io.Writer) (*pki.PKI, *slog.Logger, error) {
	log, _, err := telemetry.NewLogger(f.Logging, stderr)
	if err != nil {
		return nil, nil, err
	}
	p, err := pki.Open(ctx, f.PKI.Config, pki.Deps{Logger: log})
	return p, log, err
}

// followPKI runs the PKI's maintenance and calls write on every tick, so
// files written from it follow renewals and bundle changes, until ctx ends.
// write writes only what changed; a failure is logged and retried.
func followPKI(ctx context.Context, p *pki.PKI, interval time.Duration, log *slog.Logger, what string, write func() error) {
	go func() { _ = p.Run(ctx) }()
	// Check often enough to follow certmagic's renewal closely.
	t := time.NewTicker(min(interval, 5*time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := write(); err != nil {
				log.Error("writing "+what+" failed; retrying", "err", err)
			}
		}
	}
}

var _ flag.Value = (*stringList)(nil)
