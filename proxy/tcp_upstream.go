package proxy

import (
	"context"
	"net"

	"github.com/drawbridge-proxy/drawbridge/proxy/relay"
)

// DialStream connects to a target of the upstream for a relayed
// connection: connect failures move on to another target, up to
// retries.attempts and within the retry budget; then TLS (tls) or
// SSLRequest and TLS (postgres) toward the target. It never falls back to
// plain text. Targets are picked, and dials reported, like HTTP attempts:
// unhealthy, ejected and breaker-gated targets are never dialled.
func (u *upstream) DialStream(ctx context.Context) (net.Conn, string, error) {
	return u.loop.Dial(ctx, u.guards.breakers, u.dialer().Dial)
}

// Name is the upstream's name, as logged.
func (u *upstream) Name() string { return u.name }

// dialer opens connections to the upstream's targets for DialStream.
func (u *upstream) dialer() relay.Dialer {
	return relay.Dialer{Protocol: u.protocol, TLS: u.tlsConf, Timeout: u.dialTimeout, TLSTimeout: u.tlsTimeout}
}
