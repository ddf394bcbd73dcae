package proxy_test

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/proxy"
)

// The recommended preset adds HSTS on TLS and the browser hardening
// headers, keeping any the upstream chose itself; without it none is added.
func TestSecurityHeadersPreset(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/own-csp" {
			w.Header().Set("Content-Security-Policy", "default-src 'self'")
		}
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(up.Close)
	cfg := oneRoute(hostOf(up))
	edge := cfg.Listeners["edge"]
	edge.SecurityHeaders = proxy.SecurityHeadersRecommended
	cfg.Listeners["edge"] = edge
	cfg.Listeners["tls"] = proxy.ListenerConfig{Address: "127.0.0.1:0", TLS: proxy.ListenerTLS{Mode: proxy.TLSServer},
		SecurityHeaders: proxy.SecurityHeadersRecommended, Routes: []proxy.RouteConfig{{Name: "tls", Upstream: "app"}}}
	cfg.Listeners["bare"] = proxy.ListenerConfig{Address: "127.0.0.1:0", Routes: []proxy.RouteConfig{{Name: "bare", Upstream: "app"}}}
	gw := startGatewayWith(t, cfg, proxy.Deps{TLS: newTestTLS(t)})
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // test CA
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	get := func(url string) http.Header {
		t.Helper()
		resp, err := client.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header
	}
	want := map[string]string{
		"Strict-Transport-Security": "max-age=31536000",
		"X-Content-Type-Options":    "nosniff",
		"Referrer-Policy":           "strict-origin-when-cross-origin",
		"Content-Security-Policy":   "frame-ancestors 'self'",
		"X-Frame-Options":           "SAMEORIGIN",
	}
	h := get("https://" + gw.srv.Addr("tls").String() + "/")
	for name, v := range want {
		if got := h.Values(name); len(got) != 1 || got[0] != v {
			t.Errorf("TLS listener: %s = %q, want [%q]", name, got, v)
		}
	}
	if got := get("https://" + gw.srv.Addr("tls").String() + "/own-csp").Values("Content-Security-Policy"); strings.Join(got, ",") != "default-src 'self'" {
		t.Errorf("upstream's own CSP: got %q, want it kept alone", got)
	}
	if got := get(gw.url + "/").Get("Strict-Transport-Security"); got != "" {
		t.Errorf("plain listener sent HSTS %q, want none", got)
	}
	if got := get(gw.url + "/").Get("Referrer-Policy"); got == "" {
		t.Error("plain listener with the preset sent no Referrer-Policy")
	}
	bare := get("http://" + gw.srv.Addr("bare").String() + "/")
	for name := range want {
		if got := bare.Get(name); got != "" {
			t.Errorf("listener without the preset sent %s: %q", name, got)
		}
	}
}

func TestSecurityHeadersPresetIsValidated(t *testing.T) {
	cfg := oneRoute("127.0.0.1:1")
	l := cfg.Listeners["edge"]
	l.SecurityHeaders = "strictest"
	cfg.Listeners["edge"] = l
	cfg.Defaults()
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "listeners.edge.security_headers") {
		t.Errorf("Validate() = %v, want a problem at listeners.edge.security_headers", err)
	}
}
