// Package health decides what is healthy. For upstream targets: active
// checks (Checker: http through the upstream's own transport, tcp, tls; with
// rise and fall thresholds, a faster interval while unhealthy, and jitter)
// and passive outlier detection (Outlier: consecutive failures eject a target
// for a growing time, within a share of the upstream, with probation on
// return). For the gateway itself: liveness and readiness, served on the
// admin listener as /livez and /readyz.
//
// It never imports the proxy: it declares the small interfaces it reports to
// (Target, Ejectable), which the proxy's balancer targets satisfy.
package health
