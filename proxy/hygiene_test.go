package proxy_test

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
	"github.com/drawbridge-proxy/drawbridge/proxy"
)

func TestForwardingHeadersAreReplaced(t *testing.T) {
	b := echoBackend(t, "app")
	gw := startGateway(t, oneRoute(hostOf(b)))
	req := newRequest(t, "GET", gw.url+"/x", nil)
	req.Host = "shop.example"
	for _, h := range []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Port",
		"X-Forwarded-Client-Cert", "Forwarded", "X-Real-Ip", proxy.HeaderIdentity, "X-Drawbridge-Anything"} {
		req.Header.Set(h, "spoofed")
	}
	got := getEcho(t, req)
	want := map[string]string{
		"X-Forwarded-For":   "127.0.0.1",
		"X-Forwarded-Proto": "http",
		"X-Forwarded-Host":  "shop.example",
	}
	for h, v := range want {
		if g := strings.Join(got.Header[h], ","); g != v {
			t.Errorf("%s = %q, want %q", h, g, v)
		}
	}
	for _, h := range []string{"X-Forwarded-Port", "X-Forwarded-Client-Cert", "Forwarded", "X-Real-Ip", proxy.HeaderIdentity, "X-Drawbridge-Anything"} {
		if v, ok := got.Header[h]; ok {
			t.Errorf("client-sent %s reached the upstream: %q", h, v)
		}
	}
	if got.Host != "shop.example" {
		t.Errorf("upstream saw Host %q, want the client's %q", got.Host, "shop.example")
	}
}

func TestTrustedProxyChainIsKept(t *testing.T) {
	b := echoBackend(t, "app")
	cfg := oneRoute(hostOf(b))
	l := cfg.Listeners["edge"]
	l.TrustedProxies = []string{"127.0.0.0/8"}
	cfg.Listeners["edge"] = l
	gw := startGateway(t, cfg)
	req := newRequest(t, "GET", gw.url+"/", nil)
	req.Header.Set("X-Forwarded-For", "203.0.113.7, 10.1.1.1")
	got := getEcho(t, req)
	if g := strings.Join(got.Header["X-Forwarded-For"], ", "); g != "203.0.113.7, 10.1.1.1, 127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q, want the trusted chain extended with the peer", g)
	}
	drawtest.WaitFor(t, "access log", func() bool { return len(gw.logs.accessLines(t)) > 0 })
	if ip := gw.logs.accessLines(t)[0]["client_ip"]; ip != "10.1.1.1" {
		t.Errorf("client_ip = %v, want the right-most untrusted address 10.1.1.1", ip)
	}
}

var hexID = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestRequestID(t *testing.T) {
	b := echoBackend(t, "app")
	gw := startGateway(t, oneRoute(hostOf(b)))
	tests := []struct {
		name, sent string
		keep       bool
	}{
		{"generated when absent", "", false},
		{"kept when valid", "req-123.abc_DEF:9", true},
		{"replaced when it could split a log line", "bad id\"x", false},
		{"replaced when too long", strings.Repeat("a", 129), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := newRequest(t, "GET", gw.url+"/", nil)
			if tc.sent != "" {
				req.Header.Set("X-Request-Id", tc.sent)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got := resp.Header.Get("X-Request-Id")
			switch {
			case tc.keep && got != tc.sent:
				t.Errorf("X-Request-Id = %q, want the client's %q", got, tc.sent)
			case !tc.keep && !hexID.MatchString(got):
				t.Errorf("X-Request-Id = %q, want a generated 32-hex-digit ID", got)
			}
		})
	}
}

func TestOnlyAllowedUpgradesPass(t *testing.T) {
	b := echoBackend(t, "app")
	gw := startGateway(t, oneRoute(hostOf(b)))
	req := newRequest(t, "GET", gw.url+"/", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "h2c")
	got := getEcho(t, req)
	if v := got.Header.Get("Upgrade"); v != "" {
		t.Errorf("upstream saw Upgrade %q; only websocket may pass", v)
	}
}

func TestRequestScreening(t *testing.T) {
	b := echoBackend(t, "app")
	cfg := oneRoute(hostOf(b))
	l := cfg.Listeners["edge"]
	l.Limits.MaxHeaderBytes = 8 << 10
	l.Routes[0].MaxBodyBytes = 1024
	cfg.Listeners["edge"] = l
	gw := startGateway(t, cfg)
	tests := []struct {
		name, request string
		wantStatus    string
		wantPath      string // when the request reaches the backend
	}{
		{"content-length with transfer-encoding",
			"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "400", ""},
		{"encoded slash", "GET /a%2Fb HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "400", ""},
		{"encoded backslash", "GET /a%5cb HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "400", ""},
		{"encoded NUL", "GET /a%00b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "400", ""},
		{"CONNECT", "CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\nConnection: close\r\n\r\n", "405", ""},
		{"dot segments are resolved before routing", "GET /a/b/../../c/./d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "200", "/c/d"},
		{"encoded dots are resolved too", "GET /a/%2e%2e/c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "200", "/c"},
		{"double slashes collapse", "GET //a///b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "200", "/a/b"},
		{"head too large", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 16<<10) + "\r\nConnection: close\r\n\r\n", "431", ""},
		{"declared body too large", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\nConnection: close\r\n\r\n" + strings.Repeat("a", 2000), "413", ""},
		{"chunked body too large", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
			fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", 2000, strings.Repeat("a", 2000)), "413", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, text := rawExchange(t, gw.addr, tc.request)
			if !strings.Contains(status, " "+tc.wantStatus+" ") {
				t.Fatalf("status line %q, want %s; response:\n%s", status, tc.wantStatus, text)
			}
			if tc.wantPath != "" && !strings.Contains(text, `"Path":"`+tc.wantPath+`"`) {
				t.Errorf("backend did not see path %s; response:\n%s", tc.wantPath, text)
			}
			if tc.wantStatus != "200" && tc.wantStatus != "431" && !strings.Contains(text, `"request_id":"`) {
				t.Errorf("error body lacks the JSON request_id; response:\n%s", text)
			}
		})
	}
}

// A smuggling attempt must close the connection, so a request hidden in
// the ambiguous body is never served.
func TestAmbiguousFramingClosesConnection(t *testing.T) {
	b := echoBackend(t, "app")
	gw := startGateway(t, oneRoute(hostOf(b)))
	smuggle := "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	_, text := rawExchange(t, gw.addr, smuggle)
	if strings.Contains(text, "/smuggled") || strings.Count(text, "HTTP/1.1 ") != 1 {
		t.Errorf("want exactly one 400 response and nothing served for the hidden request; got:\n%s", text)
	}
}

// Framing verdicts stay aligned over a keep-alive connection carrying
// bodies of both kinds: clean requests after clean requests all pass.
func TestKeepAliveFramingStaysAligned(t *testing.T) {
	b := echoBackend(t, "app")
	gw := startGateway(t, oneRoute(hostOf(b)))
	reqs := "POST /1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" +
		"POST /2 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" +
		"GET /3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
	_, text := rawExchange(t, gw.addr, reqs)
	if n := strings.Count(text, "HTTP/1.1 200 OK"); n != 3 {
		t.Errorf("got %d OK responses, want 3:\n%s", n, text)
	}
}

// fakeSecrets serves secret references from a map, values changeable.
type fakeSecrets struct {
	values map[string]*fakeSecret
}

type fakeSecret struct {
	mu sync.Mutex
	v  []byte
}

func (f *fakeSecret) Value() []byte { f.mu.Lock(); defer f.mu.Unlock(); return f.v }
func (f *fakeSecret) set(v string)  { f.mu.Lock(); f.v = []byte(v); f.mu.Unlock() }

func (f *fakeSecrets) Secret(ref string, validate func([]byte) error) (proxy.SecretValue, error) {
	s, ok := f.values[ref]
	if !ok {
		return nil, fmt.Errorf("no secret %s", ref)
	}
	if err := validate(s.Value()); err != nil {
		return nil, err
	}
	return s, nil
}

func TestSecretHeaderFollowsRotationAndIsNotLogged(t *testing.T) {
	b := echoBackend(t, "app")
	cfg := oneRoute(hostOf(b))
	l := cfg.Listeners["edge"]
	l.Routes[0].RequestHeaders.SetSecret = map[string]string{"X-Api-Key": "file:/run/secrets/api_key"}
	cfg.Listeners["edge"] = l
	cfg.AccessLog.Headers = []string{"X-Api-Key"} // even when asked, the client sends none; the injected one is upstream-only
	key := &fakeSecret{v: []byte("key-one")}
	gw := startGatewayWith(t, cfg, proxy.Deps{Secrets: &fakeSecrets{values: map[string]*fakeSecret{"file:/run/secrets/api_key": key}}})
	if got := getEcho(t, newRequest(t, "GET", gw.url+"/", nil)).Header.Get("X-Api-Key"); got != "key-one" {
		t.Fatalf("upstream saw X-Api-Key %q", got)
	}
	key.set("key-two")
	req := newRequest(t, "GET", gw.url+"/", nil)
	req.Header.Set("X-Api-Key", "client-sent")
	if got := getEcho(t, req).Header.Get("X-Api-Key"); got != "key-two" {
		t.Fatalf("after rotation upstream saw %q, want key-two (and never the client's value)", got)
	}
	time.Sleep(20 * time.Millisecond)
	if logs := gw.logs.String(); strings.Contains(logs, "key-one") || strings.Contains(logs, "key-two") {
		t.Errorf("a secret value reached the log:\n%s", logs)
	}
}
