package proxy_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
	"github.com/drawbridge-proxy/drawbridge/proxy"
)

type errorBody struct {
	Error     string `json:"error"`
	RequestID string `json:"request_id"`
}

func doStatus(t *testing.T, req *http.Request) (*http.Response, errorBody) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var eb errorBody
	_ = json.Unmarshal(body, &eb)
	return resp, eb
}

func TestDialFailureIs502WithoutDetail(t *testing.T) {
	dead := drawtest.FreeAddr(t)
	gw := startGateway(t, oneRoute(dead))
	resp, body := doStatus(t, newRequest(t, "GET", gw.url+"/", nil))
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", resp.StatusCode)
	}
	if body.Error != "bad gateway" || body.RequestID != resp.Header.Get("X-Request-Id") || body.RequestID == "" {
		t.Errorf("body %+v, want error %q and the response's request ID", body, "bad gateway")
	}
	if resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("Content-Type %q, want application/json", resp.Header.Get("Content-Type"))
	}
	// The dead address must not leak to the client; the log has it.
	raw, _ := json.Marshal(body)
	if strings.Contains(string(raw), dead) {
		t.Errorf("client saw the internal address: %s", raw)
	}
	drawtest.WaitFor(t, "access log", func() bool { return len(gw.logs.accessLines(t)) > 0 })
	line := gw.logs.accessLines(t)[0]
	if !strings.Contains(line["error"].(string), "refused") || line["attempts"].(float64) != 2 {
		t.Errorf("access log %v, want the refused error and 2 attempts", line)
	}
}

// hangingBackend accepts connections and never answers.
func hangingBackend(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan net.Conn, 100)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(conns)
				return
			}
			conns <- c
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		for c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

func TestTimeoutIs504(t *testing.T) {
	tests := []struct {
		name string
		edit func(*proxy.UpstreamConfig)
	}{
		{"response header timeout", func(u *proxy.UpstreamConfig) { u.Timeouts.ResponseHeader = 200 * time.Millisecond }},
		{"per-try timeout", func(u *proxy.UpstreamConfig) { u.Retries.PerTryTimeout = 200 * time.Millisecond }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := oneRoute(hangingBackend(t))
			u := cfg.Upstreams["app"]
			u.Retries.Attempts = 1
			tc.edit(&u)
			cfg.Upstreams["app"] = u
			gw := startGateway(t, cfg)
			start := time.Now()
			resp, body := doStatus(t, newRequest(t, "GET", gw.url+"/", nil))
			if resp.StatusCode != http.StatusGatewayTimeout || body.Error != "gateway timeout" {
				t.Fatalf("status %d body %+v, want 504 gateway timeout", resp.StatusCode, body)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("took %s; the timeout did not apply", took)
			}
		})
	}
}

func TestRetryGoesToAnotherTarget(t *testing.T) {
	live := echoBackend(t, "live")
	cfg := oneRoute(drawtest.FreeAddr(t), hostOf(live))
	gw := startGateway(t, cfg)
	// Round robin alternates: half the first attempts hit the dead target
	// and must be retried on the live one, POST bodies included.
	for i := 0; i < 20; i++ {
		req := newRequest(t, "POST", gw.url+"/submit", strings.NewReader("payload"))
		got := getEcho(t, req)
		if got.Backend != "live" || got.Body != "payload" {
			t.Fatalf("request %d: got %+v, want the live backend with the body intact", i, got)
		}
	}
}

func TestNonIdempotentRequestIsNotRetriedAfterSending(t *testing.T) {
	var hits atomic.Int64
	// A backend that reads the request, then drops the connection.
	dropper := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = io.ReadAll(r.Body)
		c, _, _ := http.NewResponseController(w).Hijack()
		c.Close()
	}))
	defer dropper.Close()
	cfg := oneRoute(hostOf(dropper))
	u := cfg.Upstreams["app"]
	u.Retries.Attempts = 3
	cfg.Upstreams["app"] = u
	gw := startGateway(t, cfg)

	resp, _ := doStatus(t, newRequest(t, "POST", gw.url+"/", strings.NewReader("once")))
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("status %d, want 502", resp.StatusCode)
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("the POST reached the backend %d times, want exactly 1", n)
	}
	hits.Store(0)
	resp, _ = doStatus(t, newRequest(t, "GET", gw.url+"/", nil))
	if resp.StatusCode != http.StatusBadGateway || hits.Load() != 3 {
		t.Errorf("GET: status %d after %d attempts, want 502 after 3", resp.StatusCode, hits.Load())
	}
}

func TestRetryOnStatus(t *testing.T) {
	var calls atomic.Int64
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if calls.Add(1)%2 == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	defer flaky.Close()
	cfg := oneRoute(hostOf(flaky))
	u := cfg.Upstreams["app"]
	u.Retries.OnStatus = []int{503}
	cfg.Upstreams["app"] = u
	gw := startGateway(t, cfg)
	resp, _ := doStatus(t, newRequest(t, "GET", gw.url+"/", nil))
	if resp.StatusCode != http.StatusOK || calls.Load() != 2 {
		t.Errorf("status %d after %d calls, want 200 after 2", resp.StatusCode, calls.Load())
	}
	calls.Store(0)
	resp, _ = doStatus(t, newRequest(t, "POST", gw.url+"/", strings.NewReader("x")))
	if resp.StatusCode != http.StatusServiceUnavailable || calls.Load() != 1 {
		t.Errorf("POST: status %d after %d calls, want the 503 passed through after 1", resp.StatusCode, calls.Load())
	}
}
