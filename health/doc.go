// Package health decides what is healthy: the gateway's own liveness and
// readiness (served on the admin listener as /livez and /readyz) and, with
// the health-check issue, active probes and passive outlier tracking of
// upstream targets. It never imports the proxy: the proxy hands it the small
// interfaces it needs.
package health
