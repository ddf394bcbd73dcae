package pki

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/drawbridge-proxy/drawbridge/pki/ca"
	"github.com/drawbridge-proxy/drawbridge/pki/cert"
	"github.com/drawbridge-proxy/drawbridge/pki/enroll"
	"github.com/drawbridge-proxy/drawbridge/pki/part"
	"github.com/drawbridge-proxy/drawbridge/pki/store"
)

// Deps are what Open takes from the outside. The zero value works: no
// logs, no metrics, the system clock, the passphrase read from its file.
type Deps struct {
	// Logger receives the PKI's logs and certmagic's (through a zap core
	// writing into the same handler). Nil: discard.
	Logger *slog.Logger
	// Registerer receives the PKI's metrics. Nil: none.
	Registerer prometheus.Registerer
	// Clock is the time used for issuance, renewal decisions of the CA and
	// certificate verification. Nil: time.Now. (certmagic's own leaf
	// renewal schedule runs on the system clock.)
	Clock func() time.Time
	// Passphrase, when not nil, opens the state dir instead of the content
	// of Config.PassphraseFile: the caller reads (and watches) the secret
	// itself. Open does not keep it.
	Passphrase []byte
}

// Parts are the deps every part of the PKI takes.
func (d Deps) Parts() part.Deps {
	return part.Deps{Logger: d.Logger, Registerer: d.Registerer, Clock: d.Clock}
}

var (
	_ cert.Authority = (*ca.Issuer)(nil)
	_ cert.Authority = (*enroll.Client)(nil)
)

// PKI is the PKI of one drawbridge instance, composed from a Config: the
// sealed storage, the CA and its enrollment endpoint (or, with enroll set,
// an enrollment client instead of the CA), and the Manager that hands out
// TLS configs.
type PKI struct {
	Storage *store.SealedStorage
	// CA is nil on an enrolling instance.
	CA *ca.CA
	// EnrollHandler is the enrollment endpoint to mount at enroll.Path;
	// nil on an enrolling instance.
	EnrollHandler *enroll.Handler
	// Manager hands out server and client TLS configs.
	Manager *cert.Manager

	enroller *enroll.Client // nil on the CA
	check    time.Duration
	log      *slog.Logger
}

// Open reads the passphrase, opens the sealed state dir and builds the
// PKI. On first start an empty state dir gets a new CA. cfg must have
// passed Defaults and Validate. Close the PKI when done.
func Open(ctx context.Context, cfg Config, d Deps) (*PKI, error) {
	pass := bytes.Clone(d.Passphrase)
	if pass == nil {
		var err error
		if pass, err = store.ReadPassphrase(cfg.PassphraseFile); err != nil {
			return nil, err
		}
	}
	st, err := store.OpenStorage(ctx, cfg.StateDir, pass)
	clear(pass)
	if err != nil {
		return nil, err
	}
	return open(ctx, cfg, st, d.Parts())
}

// open builds the PKI over opened storage.
func open(ctx context.Context, cfg Config, st *store.SealedStorage, parts part.Deps) (*PKI, error) {
	p := &PKI{Storage: st, check: cfg.CheckInterval, log: parts.Log().With("component", "pki.manager")}
	var auth cert.Authority
	var err error
	if cfg.EnrollClient != nil {
		ei, err := enroll.NewClient(ctx, *cfg.EnrollClient, st, parts)
		if err != nil {
			return nil, fmt.Errorf("enroll: %w", err)
		}
		auth, p.enroller = ei, ei
	} else {
		if p.CA, err = ca.Open(ctx, cfg.CA(), st, parts, ca.OpenOptions{Create: true}); err != nil {
			return nil, err
		}
		if p.EnrollHandler, err = enroll.NewHandler(p.CA, cfg.EnrollServer, parts); err != nil {
			return nil, err
		}
		auth = ca.NewIssuer(p.CA)
	}
	if p.Manager, err = cert.NewManager(cfg.Manager(), auth, st, parts); err != nil {
		return nil, err
	}
	return p, nil
}

// Run runs the CA's maintenance (intermediate renewal, root rotation), or
// on an enrolling instance the CA contact loop (a probe and renewal
// retries with backoff and jitter), and the Manager's metrics loop until
// ctx ends. certmagic renews leaves on its own from Open to Close.
func (p *PKI) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, 2)
	if p.CA != nil {
		wg.Add(1)
		go func() { defer wg.Done(); errs[0] = p.CA.Run(ctx) }()
	}
	if p.enroller != nil {
		wg.Add(1)
		go func() { defer wg.Done(); errs[0] = p.runContact(ctx) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); errs[1] = p.Manager.Run(ctx) }()
	wg.Wait()
	return errors.Join(errs...)
}

// runContact probes the CA and retries due renewals every check interval
// until ctx ends: the enrolling instance's side of a CA that comes and goes.
func (p *PKI) runContact(ctx context.Context) error {
	return part.Loop(ctx, p.log, "CA contact", p.check, func(ctx context.Context) error {
		p.enroller.Probe(ctx)
		p.Manager.RetryRenewals(ctx)
		return nil
	})
}

// Contact reports how the CA answers an enrolling instance; ok is false
// on the CA itself.
func (p *PKI) Contact() (c enroll.CAContact, ok bool) {
	if p.enroller == nil {
		return enroll.CAContact{}, false
	}
	return p.enroller.Contact(), true
}

// Close stops certificate maintenance. It is idempotent.
func (p *PKI) Close() error { return p.Manager.Close() }
