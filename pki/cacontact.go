package pki

import (
	"context"
	"crypto/tls"
	"errors"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/drawbridge-proxy/drawbridge/pki/identity"
)

// CAContact is what an enrolling instance (an edge replica, a sidecar)
// knows about reaching its CA. Leaves stay valid while the CA is away, so
// an unreachable CA is a warning, not a readiness failure.
type CAContact struct {
	// URL is the enrollment endpoint.
	URL string `json:"url"`
	// UnreachableSince is when the first failed contact after the last
	// good one happened. Zero: the CA answered the last contact.
	UnreachableSince time.Time `json:"unreachable_since,omitzero"`
	// LastContact is when the CA last answered (any HTTP response).
	LastContact time.Time `json:"last_contact,omitzero"`
	// LastError is why the last failed contact failed.
	LastError string `json:"last_error,omitempty"`
}

// reachability records contacts with the CA. Methods are safe for
// concurrent use; a nil metrics records nothing.
type reachability struct {
	metrics *metrics

	mu    sync.Mutex // guards the following fields
	since time.Time
	last  time.Time
	err   string
}

func (r *reachability) answered(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.since, r.last, r.err = time.Time{}, now, ""
	r.metrics.setCAUnreachable(time.Time{})
}

func (r *reachability) failed(now time.Time, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.since.IsZero() {
		r.since = now
	}
	r.err = err.Error()
	r.metrics.setCAUnreachable(r.since)
}

func (r *reachability) snapshot(url string) CAContact {
	r.mu.Lock()
	defer r.mu.Unlock()
	return CAContact{URL: url, UnreachableSince: r.since, LastContact: r.last, LastError: r.err}
}

// Contact reports whether the CA answered lately.
func (ei *EnrollIssuer) Contact() CAContact { return ei.reach.snapshot(ei.cfg.URL) }

// probe asks the enrollment endpoint for nothing (a GET, answered 405) to
// learn whether the CA is there between renewals. It authenticates
// nothing and sends no token.
func (ei *EnrollIssuer) probe(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, min(ei.cfg.Timeout, 5*time.Second))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ei.cfg.URL, nil)
	if err != nil {
		return
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: ei.bundle.Load().Pool(), Time: ei.now}}
	defer tr.CloseIdleConnections()
	res, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		if ctx.Err() == nil || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			ei.reach.failed(ei.now(), err)
		}
		return
	}
	res.Body.Close()
	ei.reach.answered(ei.now())
}

// renewRetry drives renewals of leaves in their renewal window whose last
// attempt failed, with exponential backoff and jitter of its own:
// certmagic's schedule after a failed renewal starts at one minute and
// grows to hours, longer than a short-lived leaf lives. Many replicas
// losing the same CA retry at spread-out moments instead of together.
type renewRetry struct {
	base time.Duration // first delay: the check interval
	rand func() float64

	mu   sync.Mutex // guards next
	next map[string]retryState
}

type retryState struct {
	at       time.Time
	failures int
}

// delay is the wait after n consecutive failures for a leaf living
// lifetime: base doubled per failure, capped at a tenth of the lifetime
// (and five minutes), then drawn uniformly from its upper half.
func (rr *renewRetry) delay(n int, lifetime time.Duration) time.Duration {
	ceiling := max(rr.base, min(lifetime/10, 5*time.Minute))
	d := rr.base
	for i := 1; i < n && d < ceiling; i++ {
		d *= 2
	}
	d = min(d, ceiling)
	return d/2 + time.Duration(rr.rand()*float64(d/2))
}

// retryRenewals renews, once per call, every managed leaf that is in its
// renewal window and due for a retry.
func (m *Manager) retryRenewals(ctx context.Context, rr *renewRetry) {
	now := m.now()
	for _, id := range m.managedIDs() {
		c, err := m.Certificate(id)
		if err != nil {
			continue
		}
		life := c.Leaf.NotAfter.Sub(c.Leaf.NotBefore)
		if c.Leaf.NotAfter.Sub(now) > time.Duration(float64(life)*m.ratio) {
			rr.forget(id)
			continue
		}
		if !rr.due(id, now) {
			continue
		}
		if err := m.renew(ctx, id); err != nil {
			if ctx.Err() != nil {
				return
			}
			wait := rr.failed(id, now, life)
			m.log.Warn("renewal failed; the current certificate stays in use", "identity", id.String(),
				"valid_until", c.Leaf.NotAfter.Format(time.RFC3339), "retry_in", wait.Round(time.Millisecond).String(), "err", err)
			continue
		}
		rr.forget(id)
		m.log.Info("certificate renewed after a failed attempt", "identity", id.String())
	}
	m.updateExpiry()
}

func (rr *renewRetry) due(id identity.ID, now time.Time) bool {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	st, ok := rr.next[id.String()]
	return !ok || !now.Before(st.at)
}

func (rr *renewRetry) failed(id identity.ID, now time.Time, lifetime time.Duration) time.Duration {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	st := rr.next[id.String()]
	st.failures++
	d := rr.delay(st.failures, lifetime)
	st.at = now.Add(d)
	rr.next[id.String()] = st
	return d
}

func (rr *renewRetry) forget(id identity.ID) {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	delete(rr.next, id.String())
}

func newRenewRetry(base time.Duration) *renewRetry {
	return &renewRetry{base: base, rand: rand.Float64, next: map[string]retryState{}}
}

// runContact probes the CA and retries due renewals every check interval
// until ctx ends: the enrolling instance's side of a CA that comes and goes.
func (p *PKI) runContact(ctx context.Context, ei *EnrollIssuer) error {
	rr := newRenewRetry(p.Manager.check)
	return runLoop(ctx, p.Manager.log, "CA contact", p.Manager.check, func(ctx context.Context) error {
		ei.probe(ctx)
		p.Manager.retryRenewals(ctx, rr)
		return nil
	})
}
