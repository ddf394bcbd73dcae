package proxy

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/drawbridge-proxy/drawbridge/proxy/balancer"
	"github.com/drawbridge-proxy/drawbridge/proxy/relay"
)

// DialStream connects to a target of the upstream for a relayed
// connection: connect failures move on to another target, up to
// retries.attempts and within the retry budget; then TLS (tls) or
// SSLRequest and TLS (postgres) toward the target. It never falls back to
// plain text. Targets are picked, and dials reported, like HTTP attempts:
// unhealthy, ejected and breaker-gated targets are never dialled.
func (u *upstream) DialStream(ctx context.Context) (net.Conn, string, error) {
	var last error
	g := u.guards
	g.budget.request()
	var triedBuf [4]*balancer.Target
	tried := triedBuf[:0]
	for attempt := 1; attempt <= u.retries.Attempts; attempt++ {
		if attempt > 1 && !g.budget.withdraw() {
			inc(g.metrics.exhausted, u.name)
			break
		}
		target, done := u.pick(g.breakers, tried)
		if target == nil {
			if last != nil {
				break
			}
			inc(g.metrics.noTarget, u.name)
			return nil, "", ErrNoTarget
		}
		if attempt > 1 {
			inc(g.metrics.retries, u.name)
		}
		start := time.Now()
		end := target.Begin()
		conn, err := u.dialer().Dial(ctx, target.Addr)
		end(time.Since(start))
		kind := dialOutcome(ctx, err)
		done(kind, 0)
		u.reportOutcome(target, kind, 0)
		if err == nil {
			return conn, target.Addr, nil
		}
		last = fmt.Errorf("%s: %w", target.Addr, err)
		if !isConnectFailure(err) || ctx.Err() != nil {
			break
		}
		tried = append(tried, target)
	}
	return nil, "", last
}

// Name is the upstream's name, as logged.
func (u *upstream) Name() string { return u.name }

// dialer opens connections to the upstream's targets for DialStream.
func (u *upstream) dialer() relay.Dialer {
	return relay.Dialer{Protocol: u.protocol, TLS: u.tlsConf, Timeout: u.dialTimeout, TLSTimeout: u.tlsTimeout}
}
