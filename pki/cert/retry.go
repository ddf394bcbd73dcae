package cert

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/drawbridge-proxy/drawbridge/pki/identity"
)

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

// RetryRenewals renews, once per call, every managed leaf that is in its
// renewal window and whose last renewal failed long enough ago (with
// backoff and jitter): an enrolling instance calls it every check
// interval, since certmagic's own retries outgrow a short-lived leaf.
func (m *Manager) RetryRenewals(ctx context.Context) {
	rr := m.retry
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
