package identity

import (
	"strings"
	"testing"
)

func TestAllowList(t *testing.T) {
	al, err := NewAllowList([]string{
		"spiffe://td/web",
		"spiffe://td/ns/*",
		"spiffe://other/*",
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		id   string
		want bool
	}{
		{"spiffe://td/web", true},
		{"spiffe://td/web/x", false},
		{"spiffe://td/webx", false},
		{"spiffe://td/ns/api", true},
		{"spiffe://td/ns/api/v2", true},
		{"spiffe://td/ns", false},
		{"spiffe://td/nsx/api", false},
		{"spiffe://td2/ns/api", false},
		{"spiffe://other/anything", true},
		{"spiffe://other", false},
	}
	for _, tc := range cases {
		if got := al.Allows(mustParse(t, tc.id)); got != tc.want {
			t.Errorf("Allows(%s) = %v, want %v", tc.id, got, tc.want)
		}
	}
	if al.Allows(ID{}) {
		t.Error("Allows(zero ID) = true, want false")
	}
}

func TestAllowListFailsClosed(t *testing.T) {
	id := MustNew("td", "api")
	var nilList *AllowList
	empty, err := NewAllowList(nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, al := range map[string]*AllowList{"nil": nilList, "empty": empty, "zero": {}} {
		if al.Allows(id) {
			t.Errorf("%s allow-list allows %v, want refusal", name, id)
		}
	}
}

func TestAllowListErrors(t *testing.T) {
	_, err := NewAllowList([]string{"spiffe://td/ok", "spiffe://td/a*", "http://td/x", "spiffe://td/*/x"})
	if err == nil {
		t.Fatal("got no error for bad patterns")
	}
	for _, want := range []string{"[1]: ", "[2]: ", "[3]: "} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name pattern %s", err, want)
		}
	}
	if strings.Contains(err.Error(), "[0]: ") {
		t.Errorf("error %q names the valid pattern [0]", err)
	}
}

func mustParse(t *testing.T, s string) ID {
	t.Helper()
	id, err := Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
