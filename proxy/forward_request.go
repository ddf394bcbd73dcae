package proxy

import (
	"net"
	"net/http"
	"strings"

	"github.com/drawbridge-proxy/drawbridge/proxy/http1"
)

// Values shared by every upstream request; never appended to in place
// (each has len == cap).
var (
	valueEmpty    = []string{""}
	valueHTTP     = []string{"http"}
	valueHTTPS    = []string{"https"}
	valueUpgrade  = []string{"Upgrade"}
	valueTrailers = []string{"trailers"}
)

// outbound builds the upstream request from the client's, its header in
// h (empty). It lives in the exchange, so building it allocates nothing.
// own: the header gets its own copy of the client's values (outHeader).
func (f *forwarder) outbound(in *http.Request, ex *exchange, h http.Header, own bool) (*http.Request, error) {
	up := upgradeType(in.Header)
	if up != "" && !printable(up) {
		return nil, badUpgrade(up)
	}
	r := f.route
	out := &ex.out
	*out = *in // the context too: the upstream request ends with the client's
	ex.outURL = *in.URL
	out.URL = &ex.outURL
	out.Close, out.RequestURI = false, ""
	if in.ContentLength == 0 {
		out.Body = nil
	}
	out.Header = r.outHeader(in, ex, up, h)
	if own {
		ownValues(out.Header)
	}
	out.URL.Scheme = r.upstream.scheme
	out.URL.Host = r.upstream.name // replaced by the target's address on each attempt
	out.URL.Path, out.URL.RawPath = r.upstreamPath(ex.path, in.URL.RawPath, ex.pathChanged)
	if r.reqHeaders.host != "" {
		out.Host = r.reqHeaders.host
	}
	return out, nil
}

// outHeader is the upstream request's header: the client's without its
// hop-by-hop fields (RFC 9110 section 7.6.1, Connection's nominees too)
// and without anything it could use to pose as what drawbridge vouches for;
// then X-Forwarded-{For,Host,Proto}, the request ID, the verified identity
// and the route's edits. A client's X-Forwarded-For chain is kept only
// from a trusted proxy.
func (r *route) outHeader(in *http.Request, ex *exchange, upgrade string, h http.Header) http.Header {
	src := in.Header
	nominated := src["Connection"]
	for name, vv := range src {
		if isHopByHopName(name) || r.stripHdrs.drops(name) || len(nominated) > 0 && http1.HasToken(nominated, name) {
			continue
		}
		h[name] = vv
	}
	if http1.HasToken(src["Te"], "trailers") {
		h["Te"] = valueTrailers
	}
	if upgrade != "" {
		h["Connection"], h["Upgrade"] = valueUpgrade, ex.value(upgrade)
	}
	if clientIP, _, err := net.SplitHostPort(in.RemoteAddr); err == nil {
		if prior := src["X-Forwarded-For"]; ex.peerTrusted && len(prior) > 0 {
			clientIP = strings.Join(prior, ", ") + ", " + clientIP
		}
		h["X-Forwarded-For"] = ex.value(clientIP)
	}
	h["X-Forwarded-Host"] = ex.value(in.Host)
	h["X-Forwarded-Proto"] = valueHTTP
	if in.TLS != nil {
		h["X-Forwarded-Proto"] = valueHTTPS
	}
	h[HeaderRequestID] = ex.value(ex.requestID)
	if ex.identity != "" {
		h[HeaderIdentity] = ex.value(ex.identity)
	}
	r.reqHeaders.apply(h)
	dropUnderscoreTwins(h)
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = valueEmpty // both transports send none rather than their own
	}
	return h
}

// ownValues gives h's value slices storage of their own (one slab). The
// native engine reuses a request's header values for the connection's next
// request once the handler returns, and net/http's Transport may still be
// writing a canceled request's head from its own goroutine after RoundTrip
// returned; the native transport writes it before it returns.
func ownValues(h http.Header) {
	n := 0
	for _, vv := range h {
		n += len(vv)
	}
	slab := make([]string, 0, n)
	for k, vv := range h {
		start := len(slab)
		slab = append(slab, vv...)
		h[k] = slab[start:len(slab):len(slab)]
	}
}
