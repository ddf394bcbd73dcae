package proxy

import (
	"net"
	"net/http"
	"sort"
	"strings"
)

// router finds the route for a request: first the host group (exact name,
// then one-label wildcard, then routes without hosts), then within the group
// the longest path prefix whose method and header conditions hold.
type router struct {
	exact    map[string][]*route
	wildcard map[string][]*route // "*.example.com" is stored under "example.com"
	anyHost  []*route
}

func newRouter(routes []*route) *router {
	rt := &router{exact: map[string][]*route{}, wildcard: map[string][]*route{}}
	for _, r := range routes {
		if len(r.hosts) == 0 {
			rt.anyHost = append(rt.anyHost, r)
			continue
		}
		for _, h := range r.hosts {
			if rest, ok := strings.CutPrefix(h, "*."); ok {
				rt.wildcard[rest] = append(rt.wildcard[rest], r)
			} else {
				rt.exact[h] = append(rt.exact[h], r)
			}
		}
	}
	// Longest prefix first; at equal prefixes a route with method or header
	// conditions is more specific than one without; then config order.
	byPrefix := func(rs []*route) {
		sort.SliceStable(rs, func(i, j int) bool {
			if len(rs[i].prefix) != len(rs[j].prefix) {
				return len(rs[i].prefix) > len(rs[j].prefix)
			}
			return rs[i].conditions() > rs[j].conditions()
		})
	}
	for _, rs := range rt.exact {
		byPrefix(rs)
	}
	for _, rs := range rt.wildcard {
		byPrefix(rs)
	}
	byPrefix(rt.anyHost)
	return rt
}

// match returns the route for the request, or nil. knownHost is false when
// no route serves the request's host at all.
func (rt *router) match(r *http.Request, path string) (rte *route, knownHost bool) {
	group, ok := rt.group(hostOnly(r.Host))
	if !ok {
		return nil, false
	}
	for _, candidate := range group {
		if candidate.matches(r, path) {
			return candidate, true
		}
	}
	return nil, true
}

func (rt *router) group(host string) ([]*route, bool) {
	if rs, ok := rt.exact[host]; ok {
		return rs, true
	}
	if i := strings.IndexByte(host, '.'); i > 0 {
		if rs, ok := rt.wildcard[host[i+1:]]; ok {
			return rs, true
		}
	}
	return rt.anyHost, len(rt.anyHost) > 0
}

// hostOnly lower-cases the Host header and drops its port and a trailing dot.
func hostOnly(hostport string) string {
	host := hostport
	if strings.IndexByte(hostport, ':') >= 0 { // SplitHostPort's error for a bare host allocates
		if h, _, err := net.SplitHostPort(hostport); err == nil {
			host = h
		}
	}
	host = strings.TrimSuffix(host, ".")
	for i := 0; i < len(host); i++ {
		if c := host[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(host)
		}
	}
	return host
}

func (rte *route) conditions() int {
	n := len(rte.headers)
	if len(rte.methods) > 0 {
		n++
	}
	return n
}

func (rte *route) matches(r *http.Request, path string) bool {
	if !pathHasPrefix(path, rte.prefix) {
		return false
	}
	if len(rte.methods) > 0 {
		found := false
		for _, m := range rte.methods {
			if m == r.Method {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	for _, h := range rte.headers {
		if r.Header.Get(h.name) != h.value {
			return false
		}
	}
	return true
}

// pathHasPrefix matches whole segments: "/api" matches "/api" and "/api/x"
// but not "/apix".
func pathHasPrefix(path, prefix string) bool {
	if prefix == "/" {
		return true
	}
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	return len(path) == len(prefix) || path[len(prefix)] == '/'
}
