package http1

import "strings"

import (
	"bytes"
	"net/netip"
)

// Character classes of RFC 9110 section 5.6.2 (tokens) and 5.5 (field values).

var tcharTable = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

func isTchar(c byte) bool { return tcharTable[c] }

func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tcharTable[c] {
			return false
		}
	}
	return true
}

var valueTable = func() (t [256]bool) {
	for c := range t {
		t[c] = c >= 0x20 && c != 0x7f || c == '\t'
	}
	return t
}()

// validValue accepts field-content: HTAB, SP, VCHAR and obs-text; every
// other control byte (NUL, CR, LF, DEL ...) is refused.
func validValue(b []byte) bool {
	for _, c := range b {
		if !valueTable[c] {
			return false
		}
	}
	return true
}

// validTarget accepts the visible ASCII a request-target is made of; no
// space, no control byte, no raw non-ASCII, no fragment, and every "%"
// starts a pct-encoded octet (RFC 3986 section 2.1), which net/url also
// demands of a path.
func validTarget(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c <= 0x20 || c >= 0x7f || c == '#' {
			return false
		}
		if c == '%' {
			if i+2 >= len(b) || !isHex(b[i+1]) || !isHex(b[i+2]) {
				return false
			}
			i += 2
		}
	}
	return true
}

func isHex(c byte) bool { _, ok := hexDigit(c); return ok }

// validAuthority accepts uri-host [":" port] (RFC 9110 section 7.2, RFC
// 3986 section 3.2.2): a reg-name of unreserved and sub-delims characters,
// or an IPv6 literal in brackets; port is digits, required when needPort
// (the authority-form of CONNECT). Narrower than RFC 3986 where net/url
// would read the same bytes differently: no pct-encoding, no userinfo, a
// single colon.
func validAuthority(b []byte, needPort bool) bool {
	host, port := b, []byte(nil)
	if len(b) > 0 && b[0] == '[' {
		end := bytes.IndexByte(b, ']')
		if end < 0 {
			return false
		}
		host = b[:end+1]
		if rest := b[end+1:]; len(rest) > 0 {
			if rest[0] != ':' {
				return false
			}
			port = rest[1:]
		}
		if !validIPLiteral(host[1:end]) {
			return false
		}
	} else {
		if i := bytes.IndexByte(b, ':'); i >= 0 {
			host, port = b[:i], b[i+1:]
		}
		if len(host) == 0 || !validRegName(host) {
			return false
		}
	}
	if needPort && len(port) == 0 {
		return false
	}
	for _, c := range port {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func validRegName(b []byte) bool {
	for _, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-' || c == '.' || c == '_' || c == '~':
		case c == '!' || c == '$' || c == '&' || c == '\'' || c == '(' || c == ')' || c == '*' || c == '+' ||
			c == ',' || c == ';' || c == '=':
		default:
			return false
		}
	}
	return true
}

// validIPLiteral accepts an IPv6 address (no zone): only those may stand in
// brackets (RFC 3986 section 3.2.2). The conversion allocates, but only for
// this rare form.
func validIPLiteral(b []byte) bool {
	for _, c := range b {
		if !isHex(c) && c != ':' && c != '.' {
			return false
		}
	}
	addr, err := netip.ParseAddr(string(b))
	return err == nil && addr.Is6()
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// equalFold compares b with lower, which is already lower case ASCII.
func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// EqualFold reports whether a and b are equal ignoring ASCII case (only:
// unlike strings.EqualFold, the Kelvin sign is not a k).
func EqualFold[T ~string | ~[]byte](a, b T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// parseDigits reads a Content-Length: 1 to 18 ASCII digits, nothing else.
func parseDigits(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// ValidName reports whether s is a field name (a token): what a writer
// checks before putting a header map on the wire.
func ValidName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tcharTable[s[i]] {
			return false
		}
	}
	return true
}

// HasToken reports whether a comma-separated field (Connection, Expect)
// lists token, ignoring case and whitespace.
func HasToken(values []string, token string) bool {
	for _, v := range values {
		for v != "" {
			var item string
			item, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(strings.TrimSpace(item), token) {
				return true
			}
		}
	}
	return false
}
