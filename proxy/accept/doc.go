// Package accept negotiates a content coding from a request's
// Accept-Encoding header (RFC 9110 section 12.5.3), q-values included.
// Static files and response compression both pick their coding with it,
// so the two can never disagree.
package accept
