// Package status renders the admin listener's status page (/status, HTML)
// and its machine-readable twin (/status.json) from a Snapshot that the
// caller fills: listeners, routes, upstreams with each target's health,
// breaker state and latency, certificates with their expiry, the last
// configuration load, readiness.
//
// The page is server-rendered with html/template, refreshes itself with a
// meta refresh (no JavaScript), and lays its tables out as cards on narrow
// screens. It states what is wrong first: a target that fails is shown as
// failing even when its upstream still has others that serve.
package status
