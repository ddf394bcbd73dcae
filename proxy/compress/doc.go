// Package compress encodes HTTP responses with gzip or zstd
// (github.com/klauspost/compress) when the client accepts it, the content
// type is on an allow-list and the body is large enough to gain.
//
// It never touches a response that is already encoded, carries
// Cache-Control: no-transform, is a server-sent event stream, an upgrade,
// a partial (Range) response or has no body; it adds Vary:
// Accept-Encoding to every response it could have compressed, weakens
// strong ETags of those it does (the bytes differ), and keeps Flush,
// Hijack and http.ResponseController working through Unwrap. Encoders are
// pooled.
package compress
