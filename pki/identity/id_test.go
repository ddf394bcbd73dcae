package identity

import (
	"errors"
	"strings"
	"testing"
)

var parseCases = []struct {
	name, in string
	ok       bool
}{
	{"service", "spiffe://drawbridge.internal/api", true},
	{"nested", "spiffe://drawbridge.internal/ns/api-v2_x.y", true},
	{"trust domain only", "spiffe://drawbridge.internal", true},
	{"upper case path", "spiffe://td/API", true},
	{"empty", "", false},
	{"other scheme", "https://drawbridge.internal/api", false},
	{"upper case scheme", "SPIFFE://td/api", false},
	{"upper case trust domain", "spiffe://Drawbridge.internal/api", false},
	{"no trust domain", "spiffe:///api", false},
	{"port", "spiffe://td:8443/api", false},
	{"user info", "spiffe://u@td/api", false},
	{"query", "spiffe://td/api?x=1", false},
	{"fragment", "spiffe://td/api#x", false},
	{"trailing slash", "spiffe://td/api/", false},
	{"double slash", "spiffe://td//api", false},
	{"dot segment", "spiffe://td/./api", false},
	{"dot dot segment", "spiffe://td/ns/../api", false},
	{"percent encoding", "spiffe://td/a%2Fb", false},
	{"wildcard", "spiffe://td/ns/*", false},
	{"too long", "spiffe://td/" + strings.Repeat("a", maxIDLength), false},
}

func TestParse(t *testing.T) {
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			id, err := Parse(tc.in)
			if tc.ok {
				if err != nil {
					t.Fatalf("Parse(%q): got error %v, want none", tc.in, err)
				}
				if got := id.String(); got != tc.in {
					t.Errorf("Parse(%q).String() = %q, want the input back", tc.in, got)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse(%q) = %v, want an error", tc.in, id)
			}
			if !errors.Is(err, ErrInvalidID) {
				t.Errorf("Parse(%q) error %v does not wrap ErrInvalidID", tc.in, err)
			}
		})
	}
}

func TestNew(t *testing.T) {
	a, err := New("td", "api")
	if err != nil {
		t.Fatal(err)
	}
	b := MustNew("td", "/api")
	if a != b {
		t.Errorf("New(td, api) = %v, New(td, /api) = %v, want equal", a, b)
	}
	if a.TrustDomain() != "td" || a.Path() != "/api" {
		t.Errorf("got trust domain %q path %q, want td and /api", a.TrustDomain(), a.Path())
	}
	if (ID{}).String() != "" || !(ID{}).IsZero() {
		t.Errorf("zero ID: got %q, want empty and IsZero", ID{}.String())
	}
}

// FuzzParse checks that Parse never panics and that every accepted ID is
// canonical: printing it gives back the input, and parsing that again gives
// the same ID.
func FuzzParse(f *testing.F) {
	for _, tc := range parseCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := Parse(s)
		if err != nil {
			if !id.IsZero() {
				t.Fatalf("Parse(%q) returned %v with error %v, want the zero ID", s, id, err)
			}
			return
		}
		if id.String() != s {
			t.Fatalf("Parse(%q).String() = %q, want the input", s, id.String())
		}
		again, err := Parse(id.String())
		if err != nil || again != id {
			t.Fatalf("reparse of %q: got %v, %v", s, again, err)
		}
		if strings.ContainsAny(id.TrustDomain(), "/:@?#%") || strings.ContainsAny(id.Path(), "?#%:@") {
			t.Fatalf("Parse(%q) accepted a forbidden character: %v", s, id)
		}
	})
}
