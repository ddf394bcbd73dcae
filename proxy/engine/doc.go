// Package engine is drawbridge's native HTTP/1.1 server: it serves HTTP/1.x
// connections, plain or TLS, to an http.Handler, with the strict RFC 9112
// profile of proxy/http1 on every request.
//
// A busy connection's goroutine reads each request head into the
// connection's buffer, parses it in place, runs the handler on the same
// goroutine and writes the response through a buffered writer that is
// flushed once per response (or per Flush, for streams). There is no
// background reader and no per-request goroutine: that is where net/http's
// server spends its extra cost per request. A connection idle past a short
// hot wait gives its buffer and request state back and parks in
// proxy/netpoll with no goroutine at all (an idle keep-alive connection
// costs a few hundred bytes, as in an event loop); when its next bytes
// arrive a goroutine is started for it again. Its idle or read-header
// timeout still applies while parked, and Shutdown and Close end parked
// connections too. A request the strict profile
// refuses gets its status (400, 414, 417, 431, 501, 505) with a small JSON
// body and the connection is closed, since its framing is in doubt.
//
// The handler sees an *http.Request and an http.ResponseWriter that
// supports Flush, Hijack (for upgrades) and http.ResponseController's
// deadlines, so the same exchange core serves this engine and net/http's
// HTTP/2 server.
package engine
