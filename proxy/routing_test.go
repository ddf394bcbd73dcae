package proxy_test

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/proxy"
)

func TestRouting(t *testing.T) {
	backends := map[string]string{}
	upstreams := map[string]proxy.UpstreamConfig{}
	for _, name := range []string{"api", "apiv2", "web", "admin", "wild", "exact", "posts", "beta"} {
		b := echoBackend(t, name)
		backends[name] = hostOf(b)
		upstreams[name] = proxy.UpstreamConfig{Targets: []string{hostOf(b)}}
	}
	cfg := proxy.Config{
		Listeners: map[string]proxy.ListenerConfig{"edge": {Routes: []proxy.RouteConfig{
			{Match: proxy.MatchConfig{PathPrefix: "/api"}, StripPrefix: true, Upstream: "api"},
			{Match: proxy.MatchConfig{PathPrefix: "/api/v2/"}, RewritePrefix: "/v2", Upstream: "apiv2"},
			{Match: proxy.MatchConfig{PathPrefix: "/api", Methods: []string{"POST"}}, Upstream: "posts"},
			{Match: proxy.MatchConfig{PathPrefix: "/", Headers: map[string]string{"X-Beta": "1"}}, Upstream: "beta"},
			{Match: proxy.MatchConfig{PathPrefix: "/"}, Upstream: "web"},
			{Match: proxy.MatchConfig{Hosts: []string{"*.example.com"}}, Upstream: "wild"},
			{Match: proxy.MatchConfig{Hosts: []string{"Admin.Example.com"}, PathPrefix: "/"}, Upstream: "admin"},
			{Match: proxy.MatchConfig{Hosts: []string{"exact.example.com"}, PathPrefix: "/only"}, Upstream: "exact"},
		}}},
		Upstreams: upstreams,
	}
	gw := startGateway(t, cfg)

	tests := []struct {
		name, method, host, path string
		header                   http.Header
		wantBackend, wantPath    string
	}{
		{"longest prefix wins", "GET", "", "/api/v2/items", nil, "apiv2", "/v2/items"},
		{"strip prefix", "GET", "", "/api/todos", nil, "api", "/todos"},
		{"strip prefix to root", "GET", "", "/api", nil, "api", "/"},
		{"prefix matches whole segments only", "GET", "", "/apix", nil, "web", "/apix"},
		{"method condition", "POST", "", "/api/todos", nil, "posts", "/api/todos"},
		{"header condition", "GET", "", "/page", http.Header{"X-Beta": {"1"}}, "beta", "/page"},
		{"fallback route", "GET", "", "/page", nil, "web", "/page"},
		{"exact host, case-insensitive, with port", "GET", "ADMIN.example.com:8443", "/x", nil, "admin", "/x"},
		{"wildcard host", "GET", "shop.example.com", "/x", nil, "wild", "/x"},
		{"exact host beats wildcard", "GET", "exact.example.com", "/only/1", nil, "exact", "/only/1"},
		{"trailing dot in host", "GET", "shop.example.com.", "/", nil, "wild", "/"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := newRequest(t, tc.method, gw.url+tc.path, nil)
			if tc.host != "" {
				req.Host = tc.host
			}
			for k, v := range tc.header {
				req.Header[k] = v
			}
			got := getEcho(t, req)
			if got.Backend != tc.wantBackend || got.Path != tc.wantPath {
				t.Errorf("got backend %q path %q, want %q %q", got.Backend, got.Path, tc.wantBackend, tc.wantPath)
			}
		})
	}
}

func TestHostGroupWithoutMatchingPathIs404(t *testing.T) {
	b := echoBackend(t, "exact")
	cfg := proxy.Config{
		Listeners: map[string]proxy.ListenerConfig{"edge": {Routes: []proxy.RouteConfig{
			{Match: proxy.MatchConfig{Hosts: []string{"a.example"}, PathPrefix: "/only"}, Upstream: "app"},
		}}},
		Upstreams: map[string]proxy.UpstreamConfig{"app": {Targets: []string{hostOf(b)}}},
	}
	gw := startGateway(t, cfg)
	req := newRequest(t, "GET", gw.url+"/other", nil)
	req.Host = "a.example"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("status %d, want 404", resp.StatusCode)
	}
}

func TestUnknownHostNeverDials(t *testing.T) {
	for _, status := range []int{404, 421} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			var hits atomic.Int64
			counted := countingListenerBackend(t, &hits)
			cfg := proxy.Config{
				Listeners: map[string]proxy.ListenerConfig{"edge": {
					UnknownHostStatus: status,
					Routes:            []proxy.RouteConfig{{Match: proxy.MatchConfig{Hosts: []string{"known.example"}}, Upstream: "app"}},
				}},
				Upstreams: map[string]proxy.UpstreamConfig{"app": {Targets: []string{counted}}},
			}
			gw := startGateway(t, cfg)
			req := newRequest(t, "GET", gw.url+"/", nil)
			req.Host = "unknown.example"
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != status {
				t.Errorf("status %d, want %d", resp.StatusCode, status)
			}
			time.Sleep(50 * time.Millisecond)
			if n := hits.Load(); n != 0 {
				t.Errorf("upstream saw %d connections, want 0", n)
			}
		})
	}
}
