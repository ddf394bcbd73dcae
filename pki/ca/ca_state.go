package ca

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/drawbridge-proxy/drawbridge/pki/layout"
	"github.com/drawbridge-proxy/drawbridge/pki/metrics"
	"github.com/drawbridge-proxy/drawbridge/pki/trust"
)

const stateFormat = 1

// caState is the CA as stored: certificates in clear, keys by storage
// name (each sealed by SealedStorage). It is written in one Store, the
// commit point of every change.
type caState struct {
	Format int `json:"format"`
	// Generation counts roots ever made; it names the next one.
	Generation int `json:"generation"`
	// Roots is the trust bundle: Roots[0] is the active root, any other is
	// retiring after a rotation.
	Roots        []rootRecord `json:"roots"`
	Intermediate certRecord   `json:"intermediate"`
	// CrossPEM is Roots[0] cross-signed by Roots[1], sent in leaf chains
	// while a rotation is in progress. Empty otherwise.
	CrossPEM []byte `json:"cross_pem,omitempty"`
}

type rootRecord struct {
	certRecord
	// LastLeafExpiry is the latest NotAfter of any leaf issued under this
	// root. A retiring root leaves the bundle once it has passed.
	LastLeafExpiry time.Time `json:"last_leaf_expiry"`
}

type certRecord struct {
	CertPEM []byte `json:"cert_pem"`
	// Key is the storage name of the sealed private key; empty when the
	// key was deleted (retiring roots).
	Key string `json:"key,omitempty"`
}

// caSnapshot is the parsed, immutable state the CA issues with. It is
// swapped atomically, so handshakes and issuance never see half a change.
type caSnapshot struct {
	state    caState
	roots    []*x509.Certificate
	rootKey  crypto.Signer
	inter    *x509.Certificate
	interKey crypto.Signer
	cross    *x509.Certificate
	bundle   *trust.Bundle
}

func (ca *CA) loadKey(ctx context.Context, name string) (crypto.Signer, error) {
	b, err := ca.storage.Load(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("loading key %s: %w", name, err)
	}
	k, err := parseKeyPEM(b)
	clear(b)
	if err != nil {
		return nil, fmt.Errorf("parsing key %s: %w", name, err)
	}
	return k, nil
}

func (ca *CA) storeKey(ctx context.Context, name string, k crypto.Signer) error {
	b, err := pemKey(k)
	if err != nil {
		return fmt.Errorf("encoding key %s: %w", name, err)
	}
	defer clear(b)
	if err := ca.storage.Store(ctx, name, b); err != nil {
		return fmt.Errorf("storing key %s: %w", name, err)
	}
	return nil
}

// buildSnapshot parses st and loads the keys it needs, checking that the
// pieces fit together.
func (ca *CA) buildSnapshot(ctx context.Context, st caState) (*caSnapshot, error) {
	if st.Format != stateFormat {
		return nil, fmt.Errorf("CA state format %d is not supported (want %d)", st.Format, stateFormat)
	}
	if len(st.Roots) == 0 {
		return nil, errors.New("CA state has no root")
	}
	s := &caSnapshot{state: st}
	for i, r := range st.Roots {
		c, err := trust.ParseCertPEM(r.CertPEM)
		if err != nil {
			return nil, fmt.Errorf("CA state: roots[%d]: %w", i, err)
		}
		s.roots = append(s.roots, c)
	}
	var err error
	if s.rootKey, err = ca.loadKey(ctx, st.Roots[0].Key); err != nil {
		return nil, err
	}
	if s.inter, err = trust.ParseCertPEM(st.Intermediate.CertPEM); err != nil {
		return nil, fmt.Errorf("CA state: intermediate: %w", err)
	}
	if err := s.inter.CheckSignatureFrom(s.roots[0]); err != nil {
		return nil, fmt.Errorf("CA state: the intermediate is not signed by the active root: %w", err)
	}
	if s.interKey, err = ca.loadKey(ctx, st.Intermediate.Key); err != nil {
		return nil, err
	}
	if len(st.CrossPEM) > 0 {
		if s.cross, err = trust.ParseCertPEM(st.CrossPEM); err != nil {
			return nil, fmt.Errorf("CA state: cross certificate: %w", err)
		}
	}
	s.bundle = trust.NewBundle(s.roots)
	return s, nil
}

// refreshLocked reloads the state from storage if another process (the
// CLI's `ca rotate`, say) changed it.
func (ca *CA) refreshLocked(ctx context.Context) error {
	raw, err := ca.storage.Load(ctx, layout.CAStateKey)
	if err != nil {
		return fmt.Errorf("loading CA state: %w", err)
	}
	if string(raw) == string(ca.stateRaw) {
		return nil
	}
	var st caState
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("decoding CA state %s: %w", layout.CAStateKey, err)
	}
	snap, err := ca.buildSnapshot(ctx, st)
	if err != nil {
		return err
	}
	ca.stateRaw = raw
	ca.install(snap)
	return nil
}

// commitLocked writes st (the commit point) and installs it.
func (ca *CA) commitLocked(ctx context.Context, st caState) error {
	st.Format = stateFormat
	raw, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding CA state: %w", err)
	}
	snap, err := ca.buildSnapshot(ctx, st)
	if err != nil {
		return err
	}
	if err := ca.storage.Store(ctx, layout.CAStateKey, raw); err != nil {
		return fmt.Errorf("storing CA state: %w", err)
	}
	ca.stateRaw = raw
	ca.install(snap)
	return nil
}

func (ca *CA) install(s *caSnapshot) {
	old := ca.snap.Swap(s)
	ca.metrics.SetExpiry("intermediate", "current", s.inter.NotAfter)
	ca.metrics.SetRenewal("intermediate", "current", metrics.RenewalPoint(s.inter, ca.cfg.RenewalRatio), ca.cfg.CheckInterval)
	ca.metrics.SetExpiry("root", "active", s.roots[0].NotAfter)
	ca.metrics.SetRenewal("root", "active", s.roots[0].NotAfter.Add(-ca.cfg.RootRotateBefore), ca.cfg.CheckInterval)
	if len(s.roots) > 1 {
		ca.metrics.DeleteExpiry("root", "retiring") // a root that retires is not renewed: no renewal point
		ca.metrics.SetExpiry("root", "retiring", s.roots[1].NotAfter)
	} else {
		ca.metrics.DeleteExpiry("root", "retiring")
	}
	if old == nil || !old.roots[0].Equal(s.roots[0]) || len(old.roots) != len(s.roots) {
		ca.log.Info("trust bundle updated", "roots", len(s.roots), "active_root", trust.CertSHA256(s.roots[0]))
	}
}

// withLock runs fn holding the in-process mutex and the storage lock, so
// two processes on one state dir (a running gateway and the CLI) never
// interleave changes. fn should refresh the state first.
func (ca *CA) withLock(ctx context.Context, fn func() error) error {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	return ca.storageLocked(ctx, fn)
}

// storageLocked runs fn holding the storage lock; ca.mu must be held.
// The storage lock is taken only to change the state: reads rely on the
// state file being replaced atomically.
func (ca *CA) storageLocked(ctx context.Context, fn func() error) error {
	if err := ca.storage.Lock(ctx, layout.StateLock); err != nil {
		return fmt.Errorf("locking CA state: %w", err)
	}
	defer func() {
		if err := ca.storage.Unlock(context.WithoutCancel(ctx), layout.StateLock); err != nil {
			ca.log.Error("unlocking CA state", "err", err)
		}
	}()
	return fn()
}
