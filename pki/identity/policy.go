package identity

import (
	"errors"
	"fmt"
	"strings"
)

// AllowList is a set of allowed identities. A pattern is either an exact
// SPIFFE ID or an ID ending in "/*", which allows every ID strictly below
// that path in the same trust domain: "spiffe://td/ns/*" allows
// "spiffe://td/ns/api" and "spiffe://td/ns/api/v2" but not "spiffe://td/ns"
// itself nor "spiffe://td/nsx/api".
//
// The zero AllowList and an empty one allow nothing (fail closed). An
// AllowList is immutable and safe for concurrent use.
type AllowList struct {
	exact    map[ID]struct{}
	prefixes []ID // each matches IDs whose path starts with prefix.path + "/"
	patterns []string
}

// NewAllowList parses patterns. It returns every bad pattern at once, each
// error starting with its index ("[2]: ...").
func NewAllowList(patterns []string) (*AllowList, error) {
	al := &AllowList{exact: make(map[ID]struct{}, len(patterns))}
	var errs []error
	for i, p := range patterns {
		if err := al.add(p); err != nil {
			errs = append(errs, fmt.Errorf("[%d]: %w", i, err))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	al.patterns = append([]string(nil), patterns...)
	return al, nil
}

// CheckPattern reports whether p is a valid allow-list pattern.
func CheckPattern(p string) error {
	var al AllowList
	al.exact = map[ID]struct{}{}
	return al.add(p)
}

func (al *AllowList) add(p string) error {
	if base, ok := strings.CutSuffix(p, "/*"); ok {
		id, err := Parse(base)
		if err != nil {
			return fmt.Errorf("pattern %q: %w", p, err)
		}
		al.prefixes = append(al.prefixes, id)
		return nil
	}
	if strings.Contains(p, "*") {
		return fmt.Errorf("pattern %q: a wildcard is only allowed as a whole last segment (spiffe://td/ns/*)", p)
	}
	id, err := Parse(p)
	if err != nil {
		return fmt.Errorf("pattern %q: %w", p, err)
	}
	al.exact[id] = struct{}{}
	return nil
}

// Allows reports whether id is allowed. The zero ID is never allowed.
func (al *AllowList) Allows(id ID) bool {
	if al == nil || id.IsZero() {
		return false
	}
	if _, ok := al.exact[id]; ok {
		return true
	}
	for _, p := range al.prefixes {
		if id.trustDomain == p.trustDomain && strings.HasPrefix(id.path, p.path+"/") {
			return true
		}
	}
	return false
}

// Patterns returns the patterns the list was built from.
func (al *AllowList) Patterns() []string {
	if al == nil {
		return nil
	}
	return append([]string(nil), al.patterns...)
}
