// Package tlswire adapts the PKI to the data plane: it implements
// proxy.TLSProvider (and proxy.HandshakeObserver) over a pki.Manager,
// mapping each listener's and upstream's TLS settings onto
// pki.ServerOptions and pki.ClientOptions. It plans every identity the
// configuration needs up front, so each is managed once with the union of
// its DNS names, and runs the file and ACME certificate sources of public
// edge listeners.
package tlswire
