// Package handshake is a net.Listener that finishes each TLS handshake on
// a goroutine of its own, bounded by a timeout, before Accept returns the
// connection: a slow or silent client never holds up the others, and an
// http.Server serving it (Serve, not ServeTLS) sees finished handshakes,
// ALPN included. It imports nothing of ours; the PKI's Manager and the
// proxy's listeners both use it.
package handshake
