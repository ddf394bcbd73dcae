package proxy

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/textproto"
	"path"
	"slices"
	"strings"
)

// Headers drawbridge sets itself. Clients can never send them upstream.
const (
	// HeaderRequestID carries the request ID to the upstream and back.
	HeaderRequestID = "X-Request-Id"
	// HeaderIdentity carries the verified identity (SPIFFE ID) of the client
	// certificate to the upstream. Anything a client sends under this name,
	// or any other X-Drawbridge-* name, is removed.
	HeaderIdentity = "X-Drawbridge-Identity"
	identityPrefix = "X-Drawbridge-"
)

var hopByHop = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

func isHopByHop(name string) bool { return isHopByHopName(http.CanonicalHeaderKey(name)) }

// isHopByHopName reports a canonical hop-by-hop field name.
func isHopByHopName(name string) bool { return slices.Contains(hopByHop, name) }

func isForwardingHeader(name string) bool {
	name = http.CanonicalHeaderKey(name)
	return strings.HasPrefix(name, "X-Forwarded-") || name == "Forwarded" || name == "X-Real-Ip" || name == HeaderRequestID
}

func isIdentityHeader(name string) bool {
	return strings.HasPrefix(http.CanonicalHeaderKey(name), identityPrefix)
}

// DefaultStripHeaders are request headers that frameworks trust as the
// client's address or as the real URL, and that no client should set: they
// are removed on every listener unless listed in keep_headers.
var DefaultStripHeaders = []string{
	"Client-Ip", "True-Client-Ip", "X-Client-Ip", "X-Cluster-Client-Ip",
	"X-Original-Url", "X-Rewrite-Url", "X-Forwarded-Port", "X-Forwarded-Prefix",
}

// foldName is how CGI, WSGI and PHP see a header name: case and the
// difference between '_' and '-' are lost (HTTP_X_FORWARDED_FOR).
func foldName(name string) string {
	return strings.ToLower(strings.ReplaceAll(name, "_", "-"))
}

// isSpoofable reports a folded name drawbridge vouches for itself:
// forwarding chains, identity headers and the request ID.
func isSpoofable(folded string) bool {
	return strings.HasPrefix(folded, "x-forwarded-") || strings.HasPrefix(folded, "x-drawbridge-") ||
		folded == "forwarded" || folded == "x-real-ip"
}

// stripSet is a listener's list of extra headers to remove, folded.
type stripSet map[string]bool

func newStripSet(strip, keep []string) stripSet {
	s := stripSet{}
	for _, h := range DefaultStripHeaders {
		s[foldName(h)] = true
	}
	for _, h := range strip {
		s[foldName(h)] = true
	}
	for _, h := range keep {
		delete(s, foldName(h))
	}
	return s
}

// drops reports whether the client's header name must not reach the
// upstream: anything a client could use to pose as what drawbridge vouches
// for (forwarding chains, identity headers, the request ID) under any
// spelling an application may fold to the same name (X-Forwarded-Port,
// X-Forwarded-Client-Cert, X-Real-Ip, X_Forwarded_For ...), or a name on
// the listener's strip list. It folds into a stack buffer: it runs for
// every field of every request.
func (s stripSet) drops(name string) bool {
	var buf [64]byte
	if len(name) > len(buf) {
		f := foldName(name)
		return isSpoofable(f) || s[f] || f == "x-request-id" && strings.Contains(name, "_")
	}
	b := buf[:len(name)]
	underscore := false
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_':
			c, underscore = '-', true
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		b[i] = c
	}
	return isSpoofableBytes(b) || s[string(b)] || underscore && string(b) == "x-request-id"
}

func isSpoofableBytes(f []byte) bool {
	return bytes.HasPrefix(f, []byte("x-forwarded-")) || bytes.HasPrefix(f, []byte("x-drawbridge-")) ||
		string(f) == "forwarded" || string(f) == "x-real-ip"
}

// dropUnderscoreTwins removes a header spelled with '_' when a header that
// folds to the same name is present (one drawbridge set, say X-Api-Key):
// the application would see both under one variable and may take the
// client's.
func dropUnderscoreTwins(h http.Header) {
	var twins []string
	for name := range h {
		if strings.Contains(name, "_") {
			twins = append(twins, name)
		}
	}
	if len(twins) == 0 {
		return
	}
	dashed := map[string]bool{}
	for name := range h {
		if !strings.Contains(name, "_") {
			dashed[foldName(name)] = true
		}
	}
	for _, name := range twins {
		if dashed[foldName(name)] {
			delete(h, name)
		}
	}
}

// dropNominated removes the headers a Connection header nominates as
// hop-by-hop (RFC 9110 section 7.6.1), for when Connection itself must go
// before the forwarder would have read it.
func dropNominated(h http.Header) {
	for _, v := range h["Connection"] {
		for _, name := range strings.Split(v, ",") {
			if name = textproto.TrimString(name); name != "" {
				h.Del(name)
			}
		}
	}
}

// normalizePath removes dot segments and empty segments from a decoded
// path, keeping a trailing slash. ok is false for paths that cannot be made
// safe: not absolute, or holding NUL, backslash or control bytes that
// upstreams disagree about.
func normalizePath(p string) (clean string, ok bool) {
	if !strings.HasPrefix(p, "/") {
		return "", false
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return "", false
		}
	}
	if !needsCleaning(p) {
		return p, true
	}
	clean = path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	return clean, true
}

// needsCleaning is the fast check that spares path.Clean's allocation for
// the usual already-clean path.
func needsCleaning(p string) bool {
	return strings.Contains(p, "//") || strings.Contains(p, "/./") || strings.Contains(p, "/../") ||
		strings.HasSuffix(p, "/.") || strings.HasSuffix(p, "/..")
}

// hasAmbiguousEscapes reports encodings that change a path's structure when
// decoded: an encoded slash, backslash or NUL. Routing on the decoded path
// while the upstream splits on the raw one is how ACLs are bypassed.
func hasAmbiguousEscapes(rawPath string) bool {
	if rawPath == "" || !strings.Contains(rawPath, "%") {
		return false
	}
	l := strings.ToLower(rawPath)
	return strings.Contains(l, "%2f") || strings.Contains(l, "%5c") || strings.Contains(l, "%00")
}

// trimPrefix drops a trailing slash from a path prefix, except from "/".
func trimPrefix(p string) string {
	if len(p) > 1 && strings.HasSuffix(p, "/") {
		return strings.TrimSuffix(p, "/")
	}
	return p
}

// validRequestID accepts IDs a client or a proxy in front may pass along:
// 1 to 128 bytes of letters, digits and ._:- (nothing that could split a
// log line or a header).
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-' {
			continue
		}
		return false
	}
	return true
}

// newRequestID returns 128 random bits in hex. Request IDs correlate logs;
// they are not secrets, so the fast non-cryptographic generator suffices.
func newRequestID() string {
	var id [requestIDLen]byte
	putRequestID(&id)
	return string(id[:])
}

const requestIDLen = 32

// putRequestID writes a new request ID into id.
func putRequestID(id *[requestIDLen]byte) {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64()) //nolint:gosec // G404: request IDs correlate logs; they are not secrets
	binary.LittleEndian.PutUint64(b[8:], rand.Uint64()) //nolint:gosec // G404: as above
	hex.Encode(id[:], b[:])
}

// trustedProxies decides whose forwarding headers are believed.
type trustedProxies []netip.Prefix

func (t trustedProxies) contains(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientIP returns the address of the client as drawbridge can vouch for
// it, and whether the peer is a trusted proxy whose X-Forwarded-For chain
// may be kept. With trusted proxies, the client is the right-most address
// in the chain that is not itself a trusted proxy.
func (t trustedProxies) clientIP(remoteAddr string, xff []string) (ip string, peerTrusted bool) {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	if len(t) == 0 {
		return host, false
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !t.contains(peer) {
		return host, false
	}
	client := host
	for i := len(xff) - 1; i >= 0; i-- {
		parts := strings.Split(xff[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return client, true
			}
			client = a.String()
			if !t.contains(a) {
				return client, true
			}
		}
	}
	return client, true
}
