package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/cmd/drawbridge/internal/config"
	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
)

type readyReport struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	return getJSONWith(t, http.DefaultClient, url, v)
}

func getJSONWith(t *testing.T, c *http.Client, url string, v any) int {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	return resp.StatusCode
}

func poll(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// /readyz fails, naming the upstream and the state of its targets, while a
// required upstream has no available target; optional upstreams do not count.
func TestReadyzNamesUnavailableUpstream(t *testing.T) {
	admin := drawtest.FreeAddr(t)
	f, err := config.Parse("t.yaml", []byte(fmt.Sprintf(`
admin: {address: %q}
listeners:
  edge:
    address: "127.0.0.1:0"
    routes:
      - {match: {path_prefix: /a}, upstream: api}
      - {match: {path_prefix: /b}, upstream: extra}
upstreams:
  api:
    targets: [%q]
    health: {type: tcp, interval: 50ms, unhealthy_threshold: 1}
  extra:
    targets: [%q]
    optional: true
`, admin, drawtest.FreeAddr(t), drawtest.FreeAddr(t))))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, f, io.Discard, nil) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	var rep readyReport
	poll(t, 5*time.Second, "/readyz to fail", func() bool {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	getJSON(t, "http://"+admin+"/readyz", &rep)
	if !strings.Contains(rep.Checks["upstream:api"], "unhealthy") {
		t.Errorf("upstream:api check = %q, want the target named unhealthy", rep.Checks["upstream:api"])
	}
	if _, listed := rep.Checks["upstream:extra"]; listed {
		t.Error("the optional upstream is part of readiness")
	}
}

// The demo's API can be broken on purpose: the breaker and the route's
// fallback answer at once, and traffic returns by itself.
func TestDemoChaosFallsBackAndHeals(t *testing.T) {
	if testing.Short() {
		t.Skip("takes several seconds")
	}
	edge, admin := drawtest.FreeAddr(t), drawtest.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	opts := demoOptions{edge: edge, admin: admin, stateDir: t.TempDir()}
	go func() {
		done <- runDemo(ctx, opts, io.Discard, io.Discard)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	_, port, _ := net.SplitHostPort(edge)
	base := "https://localhost:" + port
	waitFile(t, filepath.Join(opts.stateDir, "ca.crt"), 20*time.Second)
	client := caClient(t, filepath.Join(opts.stateDir, "ca.crt"), edge)
	poll(t, 10*time.Second, "the demo to serve", func() bool {
		resp, err := client.Get(base + "/api/hello")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	resp, err := client.Post(base+"/api/chaos?seconds=2", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var body map[string]string
	poll(t, 5*time.Second, "the fallback to answer", func() bool {
		body = nil
		return getJSONWith(t, client, base+"/api/todos", &body) == http.StatusServiceUnavailable &&
			strings.Contains(body["error"], "resting")
	})
	poll(t, 20*time.Second, "the API to come back by itself", func() bool {
		var list []any
		resp, err := client.Get(base + "/api/todos")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&list) == nil
	})
}
