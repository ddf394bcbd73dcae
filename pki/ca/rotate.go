package ca

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/drawbridge-proxy/drawbridge/pki/part"
	"github.com/drawbridge-proxy/drawbridge/pki/trust"
)

// ErrRotationInProgress is returned by Rotate while a retiring root is
// still in the trust bundle.
var ErrRotationInProgress = errors.New("a root rotation is already in progress")

// Rotate starts a root rotation now (`drawbridge ca rotate`): a new root
// and intermediate, the new root cross-signed by the old one, and a bundle
// with both roots. New leaves chain to the new root at once; the old root
// leaves the bundle in a later Maintain once every leaf issued under it
// has expired. See the package documentation for the sequence.
func (ca *CA) Rotate(ctx context.Context) error {
	return ca.withLock(ctx, func() error {
		if err := ca.refreshLocked(ctx); err != nil {
			return err
		}
		if s := ca.snap.Load(); len(s.roots) > 1 {
			return fmt.Errorf("%w: the old root leaves the bundle after %s", ErrRotationInProgress,
				s.state.Roots[1].LastLeafExpiry.Format(time.RFC3339))
		}
		return ca.rotateLocked(ctx)
	})
}

func (ca *CA) rotateLocked(ctx context.Context) error {
	old := ca.snap.Load()
	now := ca.now()
	gen := old.state.Generation + 1
	root, rootKey, err := newRoot(ca.cfg.TrustDomain, gen, now, ca.cfg.RootLifetime)
	if err != nil {
		ca.metrics.IssueFailed("root")
		return err
	}
	inter, interKey, err := newIntermediate(root, rootKey, ca.cfg.TrustDomain, ca.cfg.PermittedDNSDomains, gen, now, ca.cfg.IntermediateLifetime)
	if err != nil {
		ca.metrics.IssueFailed("intermediate")
		return err
	}
	cross, err := crossSign(root, old.roots[0], old.rootKey)
	if err != nil {
		ca.metrics.IssueFailed("root")
		return err
	}
	st := caState{
		Generation:   gen,
		Roots:        []rootRecord{{certRecord: certRecord{CertPEM: trust.PEMCert(root), Key: keyName("root", root)}}},
		Intermediate: certRecord{CertPEM: trust.PEMCert(inter), Key: keyName("intermediate", inter)},
		CrossPEM:     trust.PEMCert(cross),
	}
	retiring := old.state.Roots[0]
	retiring.Key = "" // its only remaining job, cross-signing, is done
	st.Roots = append(st.Roots, retiring)
	if err := ca.storeKey(ctx, st.Roots[0].Key, rootKey); err != nil {
		return err
	}
	if err := ca.storeKey(ctx, st.Intermediate.Key, interKey); err != nil {
		return err
	}
	if err := ca.commitLocked(ctx, st); err != nil {
		return err
	}
	ca.deleteKeys(ctx, old.state.Roots[0].Key, old.state.Intermediate.Key)
	ca.metrics.Issue("root", "local")
	ca.metrics.Issue("intermediate", "local")
	ca.log.Info("root rotation started: new leaves chain to the new root; the old root stays in the bundle until its last leaf expires",
		"new_root", trust.CertSHA256(root), "old_root", trust.CertSHA256(old.roots[0]),
		"old_root_leaves_bundle_after", retiring.LastLeafExpiry)
	return nil
}

func (ca *CA) renewIntermediateLocked(ctx context.Context) error {
	s := ca.snap.Load()
	inter, interKey, err := newIntermediate(s.roots[0], s.rootKey, ca.cfg.TrustDomain, ca.cfg.PermittedDNSDomains, s.state.Generation, ca.now(), ca.cfg.IntermediateLifetime)
	if err != nil {
		ca.metrics.IssueFailed("intermediate")
		return err
	}
	st := cloneState(s.state)
	st.Intermediate = certRecord{CertPEM: trust.PEMCert(inter), Key: keyName("intermediate", inter)}
	if err := ca.storeKey(ctx, st.Intermediate.Key, interKey); err != nil {
		return err
	}
	if err := ca.commitLocked(ctx, st); err != nil {
		return err
	}
	ca.deleteKeys(ctx, s.state.Intermediate.Key)
	ca.metrics.Issue("intermediate", "local")
	ca.log.Info("renewed intermediate", "expires", inter.NotAfter, "previous_expired", s.inter.NotAfter)
	return nil
}

// retireLocked drops retiring roots whose last leaf has expired (or that
// have expired themselves), and the cross certificate with the last one.
func (ca *CA) retireLocked(ctx context.Context) (bool, error) {
	s := ca.snap.Load()
	if len(s.roots) < 2 {
		return false, nil
	}
	now := ca.now()
	st := cloneState(s.state)
	st.Roots = st.Roots[:1]
	for i, r := range s.state.Roots[1:] {
		if now.Before(r.LastLeafExpiry) && now.Before(s.roots[i+1].NotAfter) {
			st.Roots = append(st.Roots, r)
			continue
		}
		ca.log.Info("old root left the trust bundle: every leaf issued under it has expired", "root", trust.CertSHA256(s.roots[i+1]))
	}
	if len(st.Roots) == len(s.state.Roots) {
		return false, nil
	}
	if len(st.Roots) == 1 {
		st.CrossPEM = nil
	}
	return true, ca.commitLocked(ctx, st)
}

func (ca *CA) deleteKeys(ctx context.Context, names ...string) {
	for _, n := range names {
		if n == "" {
			continue
		}
		if err := ca.storage.Delete(ctx, n); err != nil {
			ca.log.Warn("deleting a replaced CA key", "key", n, "err", err)
		}
	}
}

// Maintain makes one maintenance pass: drop retiring roots that are done,
// start a root rotation when the root is within root_rotate_before of
// expiry, and renew the intermediate when renewal_ratio of its life is
// left. Run calls it every check_interval.
func (ca *CA) Maintain(ctx context.Context) error {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	// Decide on the state as read, and take the storage lock only when
	// there is something to change (the usual pass changes nothing).
	if err := ca.refreshLocked(ctx); err != nil {
		return err
	}
	if !ca.maintenanceDueLocked() {
		return nil
	}
	return ca.storageLocked(ctx, func() error {
		if err := ca.refreshLocked(ctx); err != nil {
			return err
		}
		if _, err := ca.retireLocked(ctx); err != nil {
			return fmt.Errorf("retiring old root: %w", err)
		}
		if ca.rootDueLocked() {
			ca.log.Info("root expires within root_rotate_before: rotating", "expires", ca.snap.Load().roots[0].NotAfter)
			if err := ca.rotateLocked(ctx); err != nil {
				return fmt.Errorf("rotating root: %w", err)
			}
		}
		if ca.intermediateDueLocked() {
			if err := ca.renewIntermediateLocked(ctx); err != nil {
				return fmt.Errorf("renewing intermediate: %w", err)
			}
		}
		return nil
	})
}

func (ca *CA) maintenanceDueLocked() bool {
	return ca.retireDueLocked() || ca.rootDueLocked() || ca.intermediateDueLocked()
}

func (ca *CA) retireDueLocked() bool {
	s, now := ca.snap.Load(), ca.now()
	for i, r := range s.state.Roots[1:] {
		if !now.Before(r.LastLeafExpiry) || !now.Before(s.roots[i+1].NotAfter) {
			return true
		}
	}
	return false
}

func (ca *CA) rootDueLocked() bool {
	s := ca.snap.Load()
	return len(s.roots) == 1 && s.roots[0].NotAfter.Sub(ca.now()) < ca.cfg.RootRotateBefore
}

func (ca *CA) intermediateDueLocked() bool {
	s := ca.snap.Load()
	life := s.inter.NotAfter.Sub(s.inter.NotBefore)
	return s.inter.NotAfter.Sub(ca.now()) < time.Duration(float64(life)*ca.cfg.RenewalRatio)
}

// Run calls Maintain every check_interval until ctx ends. Failures are
// logged and retried on the next tick.
func (ca *CA) Run(ctx context.Context) error {
	return part.Loop(ctx, ca.log, "CA maintenance", ca.cfg.CheckInterval, ca.Maintain)
}
