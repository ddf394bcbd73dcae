// Package listen holds the socket-level mechanics of the gateway's HTTP
// listeners, none of which needs the gateway itself: a listener that
// bounds open connections (Limit), the group of handlers in flight a drain
// waits for (InFlight), and the connections that have not sent a request yet,
// which a drain closes at once (Fresh).
//
// The caller binds the socket, builds the servers and decides when to
// drain; this package is handed the parts it works on.
package listen
