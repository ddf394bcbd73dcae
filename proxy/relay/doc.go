// Package relay is the L4 side of drawbridge: the tcp and postgres
// listeners, which join each client connection to one upstream connection
// and copy bytes both ways until both ends are done.
//
// A connection flows: accept -> opening, bounded by the handshake timeout
// (TLS termination with the listener's allow list, the ClientHello's server
// name read for a passthrough listener, or PostgreSQL's startup
// negotiation: SSLRequest, GSSENCRequest, direct TLS) -> route by server
// name (exact, one-label wildcard, then the route without names) -> the
// route's Upstream dials a target -> a pair of pipes with half-close, an idle
// timeout and a maximum lifetime -> one access log line and one span.
//
// What the listener needs from the gateway around it is declared here and
// passed in: Upstream (target picking, health, breakers, retries and the
// retry budget stay with the gateway's upstream, which calls Dialer for one
// target), Buffers, Metrics, HandshakeObserver, the access logger and the
// tracer. The socket is the caller's too: it binds it (connection limits,
// metrics), closes it to stop Serve, then drains.
//
// A draining postgres listener ends each session at its next transaction
// boundary (pgdrain.go); other relays run until they end or the caller's
// grace is over.
package relay
