package proxy_test

import (
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/proxy"
)

// smuggleGateway serves one route to up on a plain listener "edge" and a
// TLS listener "tls" (HTTP/2 and HTTP/1.1 by ALPN).
func smuggleGateway(t *testing.T, upstream, engine string) (plain, tlsAddr string) {
	t.Helper()
	cfg := oneRoute(upstream)
	cfg.Listeners["tls"] = proxy.ListenerConfig{Address: "127.0.0.1:0", TLS: proxy.ListenerTLS{Mode: proxy.TLSServer},
		Routes: []proxy.RouteConfig{{Name: "tls", Upstream: "app"}}}
	withEngine(cfg, engine)
	gw := startGatewayWith(t, cfg, proxy.Deps{TLS: newTestTLS(t)})
	return gw.addr, gw.srv.Addr("tls").String()
}

// Faulty framing is refused with one 400 and the connection closed, on
// plain and TLS listeners alike, and nothing of it reaches the upstream:
// not the request, not a request hidden in its body.
func TestFaultyFramingIsRefusedOnEveryListener(t *testing.T) {
	forEachEngine(t, testFaultyFramingIsRefused)
}

func testFaultyFramingIsRefused(t *testing.T, engine string) {
	up := newRecordingUpstream(t)
	plain, tlsAddr := smuggleGateway(t, hostOf(up.srv), engine)
	follow := "GET /follow HTTP/1.1\r\nHost: x\r\n\r\n"
	cases := []struct{ name, req string }{
		{"CL.TE", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG" + follow},
		{"TE.CL", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n" +
			"2c\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\nX: \r\n\r\n0\r\n\r\n" + follow},
		{"obs-folded TE next to CL", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding:\r\n chunked\r\n\r\n" +
			"0\r\n\r\nG" + follow},
		{"obs-fold", "GET /a HTTP/1.1\r\nHost: x\r\nX-Long: one\r\n\ttwo\r\n\r\n" + follow},
		{"HTTP/1.0 with TE", "POST /a HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n" + follow},
		{"HTTP/1.0 with TE and CL", "POST /a HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n" +
			"Content-Length: 5\r\n\r\n0\r\n\r\n" + follow},
	}
	send := map[string]func() func(*testing.T, string) (string, string){
		"plain": func() func(*testing.T, string) (string, string) {
			return func(t *testing.T, req string) (string, string) { return rawExchange(t, plain, req) }
		},
		"tls": func() func(*testing.T, string) (string, string) {
			return func(t *testing.T, req string) (string, string) { return rawTLSExchange(t, tlsAddr, req) }
		},
	}
	for _, ln := range []string{"plain", "tls"} {
		for _, c := range cases {
			t.Run(ln+"/"+c.name, func(t *testing.T) {
				status, text := send[ln]()(t, c.req)
				if !strings.HasPrefix(status, "HTTP/1.") || !strings.Contains(status, " 400 ") {
					t.Errorf("status %q, want 400", status)
				}
				if n := strings.Count(text, "HTTP/1."); n != 1 {
					t.Errorf("%d responses, want 1 and the connection closed:\n%s", n, text)
				}
			})
		}
	}
	if complete, _ := up.snapshot(); len(complete) > 0 {
		t.Errorf("upstream received %v, want nothing", complete)
	}
}

// Clean keep-alive traffic over TLS stays aligned under the check, the
// upstream learns the request came over TLS, and HTTP/2 is unaffected.
func TestFramingCheckOnTLSKeepsCleanTraffic(t *testing.T) {
	forEachEngine(t, testFramingCheckOnTLSKeepsCleanTraffic)
}

func testFramingCheckOnTLSKeepsCleanTraffic(t *testing.T, engine string) {
	b := echoBackend(t, "app")
	_, tlsAddr := smuggleGateway(t, hostOf(b), engine)
	reqs := "POST /1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" +
		"POST /2 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" +
		"GET /3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
	_, text := rawTLSExchange(t, tlsAddr, reqs)
	if n := strings.Count(text, "HTTP/1.1 200 OK"); n != 3 {
		t.Errorf("got %d OK responses, want 3:\n%s", n, text)
	}
	if !strings.Contains(text, `"X-Forwarded-Proto":["https"]`) {
		t.Errorf("upstream did not see X-Forwarded-Proto https over HTTP/1.1 on TLS:\n%s", text)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true} //nolint:gosec // test CA
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("https://" + tlsAddr + "/h2")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"https"`) {
		t.Errorf("HTTP/2 over TLS: %s %d %s, want HTTP/2 200 with X-Forwarded-Proto https", resp.Proto, resp.StatusCode, body)
	}
}

// forEachEngine runs test on both HTTP/1 engines, native and std.
func forEachEngine(t *testing.T, test func(t *testing.T, engine string)) {
	for _, e := range []string{proxy.HTTP1Native, proxy.HTTP1Std} {
		t.Run(e, func(t *testing.T) { test(t, e) })
	}
}

// withEngine sets every http listener of cfg to the HTTP/1 engine.
func withEngine(cfg proxy.Config, engine string) {
	for name, l := range cfg.Listeners {
		l.HTTP1 = engine
		cfg.Listeners[name] = l
	}
}
