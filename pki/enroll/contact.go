package enroll

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/drawbridge-proxy/drawbridge/pki/metrics"
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
	metrics *metrics.Metrics

	mu    sync.Mutex // guards the following fields
	since time.Time
	last  time.Time
	err   string
}

func (r *reachability) answered(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.since, r.last, r.err = time.Time{}, now, ""
	r.metrics.SetCAUnreachable(time.Time{})
}

func (r *reachability) failed(now time.Time, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.since.IsZero() {
		r.since = now
	}
	r.err = err.Error()
	r.metrics.SetCAUnreachable(r.since)
}

func (r *reachability) snapshot(url string) CAContact {
	r.mu.Lock()
	defer r.mu.Unlock()
	return CAContact{URL: url, UnreachableSince: r.since, LastContact: r.last, LastError: r.err}
}

// Contact reports whether the CA answered lately.
func (ei *Client) Contact() CAContact { return ei.reach.snapshot(ei.cfg.URL) }

// Probe asks the enrollment endpoint for nothing (a GET, answered 405) to
// learn whether the CA is there between renewals. It authenticates
// nothing and sends no token.
func (ei *Client) Probe(ctx context.Context) {
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
