package pki

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
)

// PKI is the PKI of one drawbridge instance, composed from a Config: the
// sealed storage, the CA and its enrollment endpoint (or, with enroll set,
// an enrollment client instead of the CA), and the Manager that hands out
// TLS configs.
type PKI struct {
	Storage *SealedStorage
	// CA is nil on an enrolling instance.
	CA *CA
	// Enroll is the enrollment endpoint to mount at EnrollPath; nil on an
	// enrolling instance.
	Enroll *EnrollHandler
	// Manager hands out server and client TLS configs.
	Manager *Manager

	enroller *EnrollIssuer // nil on the CA
}

// Open reads the passphrase, opens the sealed state dir and builds the
// PKI. On first start an empty state dir gets a new CA. cfg must have
// passed Defaults and Validate. Close the PKI when done.
func Open(ctx context.Context, cfg Config, deps Deps) (*PKI, error) {
	pass := bytes.Clone(deps.Passphrase)
	if pass == nil {
		var err error
		if pass, err = ReadPassphrase(cfg.PassphraseFile); err != nil {
			return nil, err
		}
	}
	st, err := OpenStorage(ctx, cfg.StateDir, pass)
	clear(pass)
	if err != nil {
		return nil, err
	}
	p := &PKI{Storage: st}
	var auth Authority
	if cfg.Enroll != nil {
		ei, err := NewEnrollIssuer(ctx, *cfg.Enroll, st, deps)
		if err != nil {
			return nil, fmt.Errorf("enroll: %w", err)
		}
		auth, p.enroller = ei, ei
	} else {
		if p.CA, err = OpenCA(ctx, cfg, st, deps, OpenOptions{Create: true}); err != nil {
			return nil, err
		}
		if p.Enroll, err = NewEnrollHandler(p.CA, cfg.Enrollment, deps); err != nil {
			return nil, err
		}
		auth = NewIssuer(p.CA)
	}
	if p.Manager, err = NewManager(cfg, auth, st, deps); err != nil {
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
		go func() { defer wg.Done(); errs[0] = p.runContact(ctx, p.enroller) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); errs[1] = p.Manager.Run(ctx) }()
	wg.Wait()
	return errors.Join(errs...)
}

// Contact reports how the CA answers an enrolling instance; ok is false
// on the CA itself.
func (p *PKI) Contact() (c CAContact, ok bool) {
	if p.enroller == nil {
		return CAContact{}, false
	}
	return p.enroller.Contact(), true
}

// Close stops certificate maintenance. It is idempotent.
func (p *PKI) Close() error { return p.Manager.Close() }
