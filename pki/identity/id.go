package identity

import (
	"errors"
	"fmt"
	"strings"
)

// Scheme is the URI scheme of every SPIFFE ID.
const Scheme = "spiffe"

// maxIDLength bounds an ID as the SPIFFE spec bounds URIs (2048 bytes), so a
// hostile certificate cannot make matching expensive.
const maxIDLength = 2048

// ErrInvalidID is wrapped by every error Parse returns.
var ErrInvalidID = errors.New("invalid SPIFFE ID")

// ID is a parsed SPIFFE ID. The zero ID is invalid and matches nothing.
type ID struct {
	trustDomain string
	path        string // "" or "/seg[/seg...]"
}

// TrustDomain returns the trust domain, e.g. "drawbridge.internal".
func (id ID) TrustDomain() string { return id.trustDomain }

// Path returns the path, e.g. "/api" ("" for the trust domain's own ID).
func (id ID) Path() string { return id.path }

// IsZero reports whether id is the zero (invalid) ID.
func (id ID) IsZero() bool { return id.trustDomain == "" }

// String returns the ID as a URI, spiffe://td/path, or "" for the zero ID.
func (id ID) String() string {
	if id.IsZero() {
		return ""
	}
	return Scheme + "://" + id.trustDomain + id.path
}

// New builds the ID spiffe://<trustDomain>/<path> and checks it.
// path may start with a slash or not: New("td", "api") == New("td", "/api").
func New(trustDomain, path string) (ID, error) {
	if path != "" && !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return Parse(Scheme + "://" + trustDomain + path)
}

// MustNew is New for IDs known to be valid, such as constants in tests.
// It panics on an invalid ID, so use it only with literals.
func MustNew(trustDomain, path string) ID {
	id, err := New(trustDomain, path)
	if err != nil {
		panic(err)
	}
	return id
}

// Parse checks s against the SPIFFE ID rules (SPIFFE-ID spec, section 2):
// scheme "spiffe", a lower-case trust domain of [a-z0-9.-_], no port, user
// info, query or fragment, and path segments of [a-zA-Z0-9.-_] that are
// neither empty nor "." or "..". It never normalises: an ID that is not
// already canonical is refused.
func Parse(s string) (ID, error) {
	if len(s) > maxIDLength {
		return ID{}, fmt.Errorf("%w: longer than %d bytes", ErrInvalidID, maxIDLength)
	}
	rest, ok := strings.CutPrefix(s, Scheme+"://")
	if !ok {
		return ID{}, fmt.Errorf("%w: %q does not start with %s://", ErrInvalidID, s, Scheme)
	}
	td, path := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		td, path = rest[:i], rest[i:]
	}
	if err := checkTrustDomain(td); err != nil {
		return ID{}, fmt.Errorf("%w: %q: %w", ErrInvalidID, s, err)
	}
	if err := checkPath(path); err != nil {
		return ID{}, fmt.Errorf("%w: %q: %w", ErrInvalidID, s, err)
	}
	return ID{trustDomain: td, path: path}, nil
}

// DefaultTrustDomain is the trust domain of a PKI that names none.
const DefaultTrustDomain = "drawbridge.internal"

// CheckTrustDomain reports whether td is a valid trust domain name.
func CheckTrustDomain(td string) error { return checkTrustDomain(td) }

func checkTrustDomain(td string) error {
	if td == "" {
		return errors.New("trust domain is empty")
	}
	if len(td) > 255 {
		return errors.New("trust domain is longer than 255 bytes")
	}
	for i := 0; i < len(td); i++ {
		c := td[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '.', c == '-', c == '_':
		case c >= 'A' && c <= 'Z':
			return errors.New("trust domain must be lower case")
		default:
			return fmt.Errorf("trust domain has a forbidden character %q (ports, user info and percent-encoding are not allowed)", c)
		}
	}
	return nil
}

func checkPath(path string) error {
	if path == "" {
		return nil
	}
	// path starts with "/"; splitting gives a leading empty element.
	for _, seg := range strings.Split(path[1:], "/") {
		switch seg {
		case "":
			return errors.New("path has an empty segment (double or trailing slash)")
		case ".", "..":
			return errors.New("path has a relative segment (. or ..)")
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
				return fmt.Errorf("path has a forbidden character %q (query, fragment and percent-encoding are not allowed)", c)
			}
		}
	}
	return nil
}
