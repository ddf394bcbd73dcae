package proxy_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/drawbridge-proxy/drawbridge/proxy"
)

// spoofHeaders are what an attacker sends: underscore and mixed-case
// spellings of the headers drawbridge vouches for, the client-IP and
// URL-override headers frameworks trust, and a Connection header that
// nominates X-Hop next to an Upgrade the route does not allow.
const spoofHeaders = "X_Drawbridge_Identity: spiffe://evil/admin\r\n" +
	"X_Forwarded_For: 6.6.6.6\r\n" +
	"x_forwarded_host: evil.example\r\n" +
	"X_Real_IP: 6.6.6.6\r\n" +
	"X-Real_Ip: 6.6.6.6\r\n" +
	"X_Request_Id: evil\r\n" +
	"Client-IP: 6.6.6.6\r\n" +
	"True-Client-IP: 6.6.6.6\r\n" +
	"X-Client-IP: 6.6.6.6\r\n" +
	"X-Cluster-Client-IP: 6.6.6.6\r\n" +
	"X-Original-URL: /admin\r\n" +
	"X_Rewrite_URL: /admin\r\n" +
	"X-Forwarded-Port: 1\r\n" +
	"X-Forwarded-Prefix: /admin\r\n" +
	"Upgrade: evil-protocol\r\n" +
	"Connection: Upgrade, X-Hop\r\n" +
	"X-Hop: hop-secret\r\n" +
	"X-Keep: yes\r\n"

// forbiddenFolded are the names, folded as CGI and WSGI fold them, that
// must not reach the upstream from a client.
var forbiddenFolded = []string{
	"x-drawbridge-identity", "x-real-ip", "client-ip", "true-client-ip", "x-client-ip", "x-cluster-client-ip",
	"x-original-url", "x-rewrite-url", "x-forwarded-port", "x-forwarded-prefix", "x-hop", "upgrade",
}

func fold(name string) string { return strings.ToLower(strings.ReplaceAll(name, "_", "-")) }

// echoOf extracts the backend's JSON echo from a raw response.
func echoOf(t *testing.T, text string) echoed {
	t.Helper()
	_, body, ok := strings.Cut(text, "\r\n\r\n")
	if !ok {
		t.Fatalf("no response body in:\n%s", text)
	}
	var e echoed
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("decoding echo: %v in:\n%s", err, text)
	}
	return e
}

// Underscore spellings of protected headers, the default strip list and
// headers nominated by a dropped Connection never reach the upstream, on
// plain and TLS listeners.
func TestSpoofedHeaderSpellingsAreStripped(t *testing.T) {
	forEachEngine(t, testSpoofedHeaderSpellings)
}

func testSpoofedHeaderSpellings(t *testing.T, engine string) {
	b := echoBackend(t, "app")
	tt := newTestTLS(t)
	cfg := oneRoute(hostOf(b))
	cfg.Listeners["tls"] = proxy.ListenerConfig{Address: "127.0.0.1:0", TLS: proxy.ListenerTLS{Mode: proxy.TLSServer},
		Routes: []proxy.RouteConfig{{Name: "tls", Upstream: "app"}}}
	withEngine(cfg, engine)
	gw := startGatewayWith(t, cfg, proxy.Deps{TLS: tt})
	req := "GET /h HTTP/1.1\r\nHost: x\r\n" + spoofHeaders + "Connection: close\r\n\r\n"
	for name, send := range map[string]func() (string, string){
		"plain": func() (string, string) { return rawExchange(t, gw.addr, req) },
		"tls":   func() (string, string) { return rawTLSExchange(t, gw.srv.Addr("tls").String(), req) },
	} {
		status, text := send()
		if !strings.Contains(status, " 200 ") {
			t.Fatalf("%s: status %q, want 200:\n%s", name, status, text)
		}
		e := echoOf(t, text)
		for h, vs := range e.Header {
			f := fold(h)
			for _, bad := range forbiddenFolded {
				if f == bad {
					t.Errorf("%s: upstream received %s: %v", name, h, vs)
				}
			}
			if strings.Contains(h, "_") {
				t.Errorf("%s: upstream received underscore header %s: %v", name, h, vs)
			}
			if strings.Contains(strings.Join(vs, ","), "6.6.6.6") || strings.Contains(strings.Join(vs, ","), "evil") {
				t.Errorf("%s: a spoofed value reached the upstream in %s: %v", name, h, vs)
			}
		}
		if got := e.Header.Get("X-Keep"); got != "yes" {
			t.Errorf("%s: X-Keep = %q, want the ordinary header kept", name, got)
		}
	}
}

// strip_headers adds to the default list and keep_headers exempts one of
// it, whatever the spelling.
func TestStripHeadersConfigurable(t *testing.T) {
	b := echoBackend(t, "app")
	cfg := oneRoute(hostOf(b))
	l := cfg.Listeners["edge"]
	l.StripHeaders = []string{"X-Debug-User"}
	l.KeepHeaders = []string{"true-client-ip"}
	cfg.Listeners["edge"] = l
	gw := startGateway(t, cfg)
	_, text := rawExchange(t, gw.addr, "GET / HTTP/1.1\r\nHost: x\r\nTrue-Client-IP: 192.0.2.7\r\n"+
		"X_Debug_User: root\r\nx-debug-user: root\r\nX-Client-IP: 6.6.6.6\r\nConnection: close\r\n\r\n")
	e := echoOf(t, text)
	if got := e.Header.Get("True-Client-Ip"); got != "192.0.2.7" {
		t.Errorf("True-Client-IP = %q, want it kept by keep_headers", got)
	}
	for h := range e.Header {
		if f := fold(h); f == "x-debug-user" || f == "x-client-ip" {
			t.Errorf("upstream received %s, want it stripped", h)
		}
	}
}

// A header drawbridge sets on the route (set or set_secret) cannot be
// shadowed by an underscore spelling the application folds to the same name.
func TestUnderscoreTwinOfSetHeaderIsDropped(t *testing.T) {
	b := echoBackend(t, "app")
	cfg := oneRoute(hostOf(b))
	l := cfg.Listeners["edge"]
	l.Routes[0].RequestHeaders.Set = map[string]string{"X-Tenant": "acme"}
	cfg.Listeners["edge"] = l
	gw := startGateway(t, cfg)
	_, text := rawExchange(t, gw.addr, "GET / HTTP/1.1\r\nHost: x\r\nX_Tenant: evil\r\nConnection: close\r\n\r\n")
	e := echoOf(t, text)
	for h, vs := range e.Header {
		if fold(h) == "x-tenant" && (h != "X-Tenant" || len(vs) != 1 || vs[0] != "acme") {
			t.Errorf("upstream received %s: %v, want only X-Tenant: acme", h, vs)
		}
	}
}

func TestKeepHeadersMustBeDefaults(t *testing.T) {
	cfg := oneRoute("127.0.0.1:1")
	l := cfg.Listeners["edge"]
	l.KeepHeaders = []string{"X-Forwarded-For"}
	l.StripHeaders = []string{"bad header"}
	cfg.Listeners["edge"] = l
	cfg.Defaults()
	err := cfg.Validate()
	for _, want := range []string{"listeners.edge.keep_headers[0]", "listeners.edge.strip_headers[0]"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want a problem at %s", err, want)
		}
	}
}
