// Package loop is how drawbridge's background work runs: Guard recovers and
// logs a panic in one pass (health checks, outlier sweeps, service
// discovery, secret checks, configuration reloads, scheduled backups, PKI
// maintenance), so one bad pass never ends the process, and Every is the
// ticker loop that stops when its context ends.
package loop
