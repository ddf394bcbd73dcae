// Package enroll is certificate enrollment, both sides. Handler is the
// CA's endpoint: it issues a certificate to the holder of a bootstrap
// token or renews it for the holder of a current certificate, bounds
// every source's request rate and locks out sources that guess tokens.
// Client is a certmagic.Issuer that calls it, for drawbridge instances
// without the CA key (sidecars, edge replicas), and reports whether the
// CA answers.
package enroll
