// Package redirect answers every request on a plain-HTTP listener with a
// permanent redirect (308) to the same URL over HTTPS: the host is kept,
// the port mapped, the path and query kept. 308, unlike 301, keeps the
// method and body of a POST (RFC 9110 section 15.4.9).
package redirect
