package proxy_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	pebbleca "github.com/letsencrypt/pebble/v2/ca"
	pebbledb "github.com/letsencrypt/pebble/v2/db"
	pebbleva "github.com/letsencrypt/pebble/v2/va"
	pebblewfe "github.com/letsencrypt/pebble/v2/wfe"

	"github.com/drawbridge-proxy/drawbridge/pki/part"
	"github.com/drawbridge-proxy/drawbridge/pki/pkitest"
	"github.com/drawbridge-proxy/drawbridge/pki/source"
	"github.com/drawbridge-proxy/drawbridge/proxy"
	"github.com/drawbridge-proxy/drawbridge/proxy/redirect"
)

// redirectConfig has listener "web" redirecting to listener "edge" (TLS
// on edgePort) that sends everything to backend.
func redirectConfig(webPort, edgePort int, backend string) proxy.Config {
	return proxy.Config{
		Listeners: map[string]proxy.ListenerConfig{
			"web": {Address: "127.0.0.1:" + strconv.Itoa(webPort), RedirectToHTTPS: &redirect.Config{Port: edgePort}},
			"edge": {Address: "127.0.0.1:" + strconv.Itoa(edgePort), TLS: proxy.ListenerTLS{Mode: proxy.TLSServer},
				Routes: []proxy.RouteConfig{{Name: "all", Upstream: "app"}}},
		},
		Upstreams:     map[string]proxy.UpstreamConfig{"app": {Targets: []string{backend}}},
		ShutdownGrace: 5 * time.Second,
	}
}

func TestRedirectToHTTPS(t *testing.T) {
	tt := newTestTLS(t)
	webPort, edgePort := freePort(t), freePort(t)
	gw := startGatewayWith(t, redirectConfig(webPort, edgePort, hostOf(echoBackend(t, "app"))), proxy.Deps{TLS: tt})
	req, _ := http.NewRequest("POST", "http://127.0.0.1:"+strconv.Itoa(webPort)+"/a/b%20c?x=1&y=2", strings.NewReader("form"))
	req.Host = "localhost:" + strconv.Itoa(webPort)
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := "https://localhost:" + strconv.Itoa(edgePort) + "/a/b%20c?x=1&y=2"
	if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
		t.Fatalf("got %d Location %q, want 308 to %s", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	// Following it reaches the route over TLS.
	webClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: tt.pool},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			_, port, _ := net.SplitHostPort(addr)
			return (&net.Dialer{}).DialContext(ctx, network, "127.0.0.1:"+port)
		}}}
	defer webClient.CloseIdleConnections()
	resp, err = webClient.Get("http://localhost:" + strconv.Itoa(webPort) + "/a/b%20c?x=1&y=2")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"Path":"/a/b c"`) || !strings.Contains(string(body), `"Query":"x=1`) {
		t.Errorf("after the redirect: %d %s", resp.StatusCode, body)
	}
	var logged bool
	for _, l := range gw.logs.accessLines(t) {
		logged = logged || l["listener"] == "web" && l["route"] == "https_redirect" && l["status"] == float64(308)
	}
	if !logged {
		t.Errorf("no access line for the redirect on listener web")
	}
}

func TestRedirectValidation(t *testing.T) {
	cfg := redirectConfig(1, 2, "127.0.0.1:3")
	web := cfg.Listeners["web"]
	web.RedirectToHTTPS.Port = 70000
	web.TLS.Mode = proxy.TLSServer
	web.Routes = []proxy.RouteConfig{{Upstream: "app"}}
	cfg.Listeners["web"] = web
	cfg.Defaults()
	err := cfg.Validate()
	for _, want := range []string{"listeners.web.redirect_to_https.port: must be a port", "listeners.web.redirect_to_https: needs a plain-HTTP listener", "listeners.web.routes: a redirect_to_https listener"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want %q", err, want)
		}
	}
}

// acmeTLS is a TLSProvider whose listeners serve ACME certificates and
// whose redirect listeners answer http-01 challenges, as cmd's is.
type acmeTLS struct{ a *source.ACME }

func (p acmeTLS) ServerTLS(proxy.ListenerConfig) (*tls.Config, error) {
	return &tls.Config{GetCertificate: p.a.GetCertificate, MinVersion: tls.VersionTLS12}, nil
}
func (p acmeTLS) ClientTLS(string, proxy.UpstreamTLS) (*tls.Config, error) { return nil, nil }
func (p acmeTLS) HTTPChallengeHandler(next http.Handler) http.Handler {
	return p.a.HTTPChallengeHandler(next)
}

// startPebbleHTTP01 runs Pebble in process, validating http-01 challenges
// on httpPort only. It returns the directory URL, a roots file for its API
// and the pool of its issuing root.
func startPebbleHTTP01(t *testing.T, httpPort int) (string, string, *x509.CertPool) {
	t.Helper()
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	t.Setenv("PEBBLE_AUTHZREUSE", "0")
	logger := log.New(io.Discard, "", 0)
	db := pebbledb.NewMemoryStore()
	ca := pebbleca.New(logger, db, "", "ecdsa", 0, 1, map[string]pebbleca.Profile{"default": {Description: "default"}})
	va := pebbleva.New(logger, httpPort, freePort(t), false, "", db)
	wfe := pebblewfe.New(logger, db, va, ca, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	apiCA := pkitest.NewCA(t, "pebble.test")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: wfe.Handler(), ReadHeaderTimeout: 5 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{apiCA.Leaf(t, "", "localhost")}}, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	roots := filepath.Join(t.TempDir(), "pebble-api.pem")
	if err := os.WriteFile(roots, apiCA.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.GetRootCert(0).Cert)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return "https://localhost:" + port + pebblewfe.DirectoryPath, roots, pool
}

// TestACMEHTTP01ThroughRedirectListener obtains a certificate from Pebble
// with the http-01 challenge answered by the redirect_to_https listener,
// then serves it on the TLS listener the redirect points to.
func TestACMEHTTP01ThroughRedirectListener(t *testing.T) {
	webPort, edgePort := freePort(t), freePort(t)
	dirURL, roots, issuing := startPebbleHTTP01(t, webPort)
	acfg := source.ACMEConfig{Names: []string{"localhost"}, CA: dirURL, TrustedRootsFile: roots, TLSALPNPort: -1, HTTPPort: webPort,
		AgreeToTerms: true, Email: "ops@example.test"}
	if err := acfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a, err := source.NewACME(acfg, &certmagic.FileStorage{Path: t.TempDir()}, time.Minute, part.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	gw := startGatewayWith(t, redirectConfig(webPort, edgePort, hostOf(echoBackend(t, "app"))), proxy.Deps{TLS: acmeTLS{a}})

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := a.Manage(ctx); err != nil {
		t.Fatalf("obtaining from Pebble over http-01: %v", err)
	}
	var answered bool
	for _, l := range gw.logs.accessLines(t) {
		answered = answered || l["listener"] == "web" && strings.HasPrefix(l["path"].(string), "/.well-known/acme-challenge/") && l["status"] == float64(200)
	}
	if !answered {
		t.Errorf("no 200 for /.well-known/acme-challenge/ on listener web in the access log:\n%s", gw.logs.String())
	}
	// Every other request on the plain listener is redirected, and the
	// TLS listener serves the certificate Pebble issued.
	resp, err := http.DefaultTransport.RoundTrip(mustRequest(t, "http://127.0.0.1:"+strconv.Itoa(webPort)+"/x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusPermanentRedirect {
		t.Errorf("plain request: %d, want 308", resp.StatusCode)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: issuing, ServerName: "localhost"}}}
	defer c.CloseIdleConnections()
	resp, err = c.Get("https://127.0.0.1:" + strconv.Itoa(edgePort) + "/")
	if err != nil {
		t.Fatalf("HTTPS with the ACME certificate: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("HTTPS: %d", resp.StatusCode)
	}
}

func mustRequest(t *testing.T, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
