// Package transport is drawbridge's synchronous HTTP/1.1 client for
// upstreams: an http.RoundTripper over pooled keep-alive connections,
// plain or TLS, that runs each exchange on the caller's goroutine.
//
// net/http's Transport gives every connection a reader and a writer
// goroutine and hands each request and response between them over
// channels; a proxy that already has a goroutine per client request pays
// for those hand-offs on every request. Here the caller writes the request
// head and body, reads the response head (parsed as strictly as requests
// are, by proxy/http1) and reads the body; the connection goes back to the
// pool when the body is closed, and reuses the response for its next one.
// A response two parsers could frame differently is an error and its
// connection is closed, never reused. Cancellation (the client left, a
// per-try timeout) works through the connection's deadline, with no
// goroutine unless it fires; a request context with CancelHooks (the
// native engine's) watches for it without allocating.
package transport
