package proxy_test

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/drawbridge-proxy/drawbridge/proxy"
	"github.com/drawbridge-proxy/drawbridge/proxy/ratelimit"
)

func TestRateLimitEndToEnd(t *testing.T) {
	tt := newTestTLS(t)
	backend := hostOf(echoBackend(t, "api"))
	for _, tc := range []struct{ name, mode string }{{"http1", proxy.TLSNone}, {"http2", proxy.TLSServer}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := oneRoute(backend)
			l := cfg.Listeners["edge"]
			l.TLS.Mode = tc.mode
			l.Routes[0].RateLimit = &ratelimit.Config{Rate: 0.5, Burst: 2, Key: ratelimit.KeyHeader, Header: "X-Api-Key"}
			cfg.Listeners["edge"] = l
			reg := prometheus.NewRegistry()
			gw := startGatewayWith(t, cfg, proxy.Deps{TLS: tt, Registerer: reg})
			base, client := gw.url, http.DefaultClient
			if tc.mode != proxy.TLSNone {
				base = "https://" + gw.addr
				client = &http.Client{Transport: &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{RootCAs: tt.pool}}}
			}
			get := func(key string) (*http.Response, string) {
				req, _ := http.NewRequest("GET", base+"/x", nil)
				req.Header.Set("X-Api-Key", key)
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp, string(b)
			}
			for i := range 2 {
				if resp, _ := get("alice"); resp.StatusCode != 200 {
					t.Fatalf("request %d within the burst: %d", i, resp.StatusCode)
				}
			}
			resp, body := get("alice")
			if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, `"error":"too many requests"`) ||
				resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("past the burst: %d %q, want a JSON 429", resp.StatusCode, body)
			}
			if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 2 {
				t.Errorf("Retry-After %q, want 1 or 2 seconds at 0.5/s", resp.Header.Get("Retry-After"))
			}
			if resp, _ := get("bob"); resp.StatusCode != 200 {
				t.Errorf("another key was refused (%d): buckets are per key", resp.StatusCode)
			}
			if got := testutil.ToFloat64(mustCounter(t, reg, "drawbridge_ratelimit_refused_total", map[string]string{"route": "all"})); got != 1 {
				t.Errorf("drawbridge_ratelimit_refused_total = %v, want 1", got)
			}
			var limited bool
			for _, line := range gw.logs.accessLines(t) {
				limited = limited || line["limited"] == "rate" && line["status"] == float64(429)
			}
			if !limited || !strings.Contains(gw.logs.String(), "request refused: route limit") {
				t.Errorf("no access line with limited=rate, or no refusal line, in\n%s", gw.logs.String())
			}
		})
	}
}

func TestMaxInFlight(t *testing.T) {
	release, entered := make(chan struct{}), make(chan struct{}, 4)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
		_, _ = io.WriteString(w, "done")
	}))
	t.Cleanup(slow.Close)
	cfg := oneRoute(hostOf(slow))
	cfg.Listeners["edge"].Routes[0].MaxInFlight = 1
	gw := startGateway(t, cfg)
	first := make(chan int, 1)
	go func() {
		resp, err := http.Get(gw.url + "/a")
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	<-entered
	resp, err := http.Get(gw.url + "/b")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	close(release)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "in progress") {
		t.Errorf("second request: %d %q Retry-After %q, want 503 with Retry-After", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	if got := <-first; got != 200 {
		t.Errorf("first request: %d, want 200", got)
	}
	resp, err = http.Get(gw.url + "/c")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("after the first finished: %d, want 200 (the slot is free)", resp.StatusCode)
	}
}

func TestRateLimitValidation(t *testing.T) {
	cfg := oneRoute("127.0.0.1:1")
	cfg.Listeners["edge"].Routes[0].RateLimit = &ratelimit.Config{Rate: -1, Key: ratelimit.KeyIdentity}
	cfg.Listeners["edge"].Routes[0].MaxInFlight = -2
	cfg.Defaults()
	err := cfg.Validate()
	for _, want := range []string{
		"listeners.edge.routes[0].rate_limit.rate: must be > 0", "listeners.edge.routes[0].rate_limit.key: identity needs",
		"listeners.edge.routes[0].max_in_flight: must be >= 0",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want %q", err, want)
		}
	}
}
