package proxy_test

import (
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/drawbridge-proxy/drawbridge/proxy"
	"github.com/drawbridge-proxy/drawbridge/proxy/static"
)

// writeSite writes files (name: body) under a new temporary root.
func writeSite(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, body := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// staticConfig serves an app at / from root beside an API route that
// forwards /api to the api backend.
func staticConfig(root, api string, tlsMode string) proxy.Config {
	return proxy.Config{
		Listeners: map[string]proxy.ListenerConfig{"edge": {
			TLS: proxy.ListenerTLS{Mode: tlsMode},
			Routes: []proxy.RouteConfig{
				{Name: "web", Static: &static.Config{Root: root, SPAFallback: "index.html"},
					ResponseHeaders: proxy.HeaderOps{Set: map[string]string{"X-Frame-Options": "DENY"}}},
				{Name: "api", Match: proxy.MatchConfig{PathPrefix: "/api"}, Upstream: "api"},
			},
		}},
		Upstreams:     map[string]proxy.UpstreamConfig{"api": {Targets: []string{api}}},
		ShutdownGrace: 5 * time.Second,
	}
}

func TestStaticRouteEndToEnd(t *testing.T) {
	root := writeSite(t, map[string]string{
		"index.html": "<!doctype html>app", "assets/index-DiwrgTda.js": "js", "assets/index-DiwrgTda.js.zst": "ZSTD",
	})
	api := hostOf(echoBackend(t, "api"))
	tt := newTestTLS(t)
	for _, tc := range []struct {
		name, mode, proto string
	}{{"http1", proxy.TLSNone, "HTTP/1.1"}, {"http2", proxy.TLSServer, "HTTP/2.0"}} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			gw := startGatewayWith(t, staticConfig(root, api, tc.mode), proxy.Deps{TLS: tt, Registerer: reg})
			base, client := gw.url, &http.Client{Transport: &http.Transport{DisableCompression: true}}
			if tc.mode != proxy.TLSNone {
				base = "https://" + gw.addr
				client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: tt.pool}, ForceAttemptHTTP2: true, DisableCompression: true}
			}
			do := func(path string, hdr map[string]string) (*http.Response, string) {
				req, _ := http.NewRequest("GET", base+path, nil)
				for k, v := range hdr {
					req.Header.Set(k, v)
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				if resp.Proto != tc.proto {
					t.Errorf("%s went over %s, want %s", path, resp.Proto, tc.proto)
				}
				return resp, string(b)
			}
			resp, body := do("/todos/7", nil)
			if resp.StatusCode != 200 || body != "<!doctype html>app" || resp.Header.Get("Cache-Control") != "no-cache" ||
				resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get(proxy.HeaderRequestID) == "" {
				t.Errorf("SPA route: %d %q headers %v", resp.StatusCode, body, resp.Header)
			}
			resp, body = do("/assets/index-DiwrgTda.js", map[string]string{"Accept-Encoding": "zstd"})
			if body != "ZSTD" || resp.Header.Get("Content-Encoding") != "zstd" || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") {
				t.Errorf("asset: %q encoding %q cache %q, want the zstd sibling, immutable", body, resp.Header.Get("Content-Encoding"), resp.Header.Get("Cache-Control"))
			}
			resp, body = do("/assets/missing-12345678.js", nil)
			if resp.StatusCode != 404 || !strings.Contains(body, `"error":"not found"`) || resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("missing asset: %d %q, want a JSON 404", resp.StatusCode, body)
			}
			if resp, body = do("/api/x", nil); !strings.Contains(body, `"Backend":"api"`) {
				t.Errorf("/api went to %q (%d), want the api backend beside the static route", body, resp.StatusCode)
			}
			lines := gw.logs.accessLines(t)
			var sawStatic bool
			for _, l := range lines {
				if l["route"] == "web" && l["static"] == "file" && l["encoding"] == "zstd" {
					sawStatic = true
				}
				if l["route"] == "web" && l["upstream"] != nil {
					t.Errorf("a static line names an upstream: %v", l)
				}
			}
			if !sawStatic {
				t.Errorf("no access line with static=file encoding=zstd in %v", lines)
			}
			if got := testutil.ToFloat64(mustCounter(t, reg, "drawbridge_static_responses_total", map[string]string{"route": "web", "result": "spa_fallback", "encoding": "identity"})); got != 1 {
				t.Errorf("spa_fallback count %v, want 1", got)
			}
		})
	}
}

// mustCounter finds the counter sample of name with exactly labels.
func mustCounter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue metric
				}
			}
			c := prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
			c.Add(m.GetCounter().GetValue())
			return c
		}
	}
	t.Fatalf("no %s%v", name, labels)
	return nil
}

func TestStaticRouteValidation(t *testing.T) {
	cfg := proxy.Config{
		Listeners: map[string]proxy.ListenerConfig{"edge": {Routes: []proxy.RouteConfig{
			{Name: "web", Upstream: "api", Static: &static.Config{Root: "www", SPAFallback: "../x"}, Fallback: proxy.FallbackConfig{Status: 503}},
		}}},
		Upstreams: map[string]proxy.UpstreamConfig{"api": {Targets: []string{"127.0.0.1:1"}}},
	}
	cfg.Defaults()
	err := cfg.Validate()
	for _, want := range []string{
		"listeners.edge.routes[0].static.root: ", "listeners.edge.routes[0].static.spa_fallback: ",
		"listeners.edge.routes[0].upstream: a static route", "listeners.edge.routes[0].fallback: ",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v\nwant a problem %q", err, want)
		}
	}
	// The file system is checked when the server is built.
	cfg.Listeners["edge"] = proxy.ListenerConfig{Address: "127.0.0.1:0", Routes: []proxy.RouteConfig{
		{Name: "web", Static: &static.Config{Root: filepath.Join(t.TempDir(), "none")}},
	}}
	if _, err := proxy.New(cfg, proxy.Deps{}); err == nil || !strings.Contains(err.Error(), "listeners.edge.routes[0].static.root: ") {
		t.Errorf("New with a missing root = %v, want it under listeners.edge.routes[0].static.root", err)
	}
}
