// Package http1 is drawbridge's HTTP/1.1 message codec: a strict parser of
// request and response heads that works in place on a byte slice, and the
// Content-Length and chunked body framings of RFC 9112.
//
// It is deliberately stricter than net/http (its differential fuzz oracle,
// fuzz_test.go): anything two HTTP/1 parsers could read differently is an
// error here, so a message drawbridge forwards means the same thing to
// every hop behind it. Refused: Content-Length with Transfer-Encoding;
// Content-Length that is not plain digits, or given twice; any
// Transfer-Encoding but a single final "chunked" (501 for a well-formed
// list of codings drawbridge does not implement, 400 for a malformed one
// or chunked twice or not last); Transfer-Encoding on HTTP/1.0; a Trailer
// field naming a framing field; obs-fold; bare CR or LF; whitespace before
// a colon; bad token characters; control characters in values; targets
// with bad pct-encoding; bad chunk sizes and extensions; a missing, empty,
// malformed or repeated Host in HTTP/1.1; an absolute-form or
// authority-form target whose authority disagrees with Host; overlong
// lines and heads (414, 431); versions other than 1.0 and 1.1 (505); an
// Expect other than 100-continue (417).
package http1
