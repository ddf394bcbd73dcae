package relay

import (
	"context"
	"net"
	"testing"
)

// namedUpstream is an Upstream that only has a name.
type namedUpstream string

func (u namedUpstream) Name() string { return string(u) }

func (namedUpstream) DialStream(context.Context) (net.Conn, string, error) {
	return nil, "", net.ErrClosed
}

func TestRoutePicksExactThenWildcardThenDefault(t *testing.T) {
	l := New(Config{Name: "edge", Protocol: ProtocolTCP}, []Route{
		{Name: "any", Upstream: namedUpstream("fallback")},
		{Name: "wild", Hosts: []string{"*.Example.com."}, Upstream: namedUpstream("wild")},
		{Name: "api", Hosts: []string{"API.example.com"}, Upstream: namedUpstream("api")},
	}, Deps{})
	tests := []struct {
		name, sni, want string
	}{
		{"exact, any case", "api.EXAMPLE.com", "api"},
		{"exact with the root dot", "api.example.com.", "api"},
		{"one label under the wildcard", "www.example.com", "wild"},
		{"two labels are not the wildcard's", "a.b.example.com", "any"},
		{"the wildcard's own domain is not under it", "example.com", "any"},
		{"no server name", "", "any"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := l.route(tt.sni); got == nil || got.name != tt.want {
				t.Errorf("route(%q) = %v, want %q", tt.sni, got, tt.want)
			}
		})
	}
	l.SetRoutes([]Route{{Name: "api", Hosts: []string{"api.example.com"}, Upstream: namedUpstream("api")}})
	if got := l.route("other.example.com"); got != nil {
		t.Errorf("after SetRoutes without a default: route(other.example.com) = %q, want none", got.name)
	}
}
