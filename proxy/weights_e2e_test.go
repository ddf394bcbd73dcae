package proxy_test

import (
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/drawbridge-proxy/drawbridge/proxy"
)

// namedBackend answers its name and counts the connections that close.
func namedBackend(t *testing.T, name string, closed *atomic.Int64) string {
	t.Helper()
	b := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, name)
	}))
	b.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			closed.Add(1)
		}
	}
	b.Start()
	t.Cleanup(b.Close)
	return hostOf(b)
}

func weightedConfig(v1, v2 string, w1, w2 int, policy string) proxy.Config {
	cfg := oneRoute(v1, v2)
	u := cfg.Upstreams["app"]
	u.Weights, u.Balance = []int{w1, w2}, policy
	cfg.Upstreams["app"] = u
	l := cfg.Listeners["edge"]
	l.Address = "127.0.0.1:0"
	cfg.Listeners["edge"] = l
	return cfg
}

// split sends n sequential requests and returns the share (percent) v2 got.
func split(t *testing.T, client *http.Client, url string, n int) float64 {
	t.Helper()
	v2 := 0
	for range n {
		resp, err := client.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) == "v2" {
			v2++
		}
	}
	return 100 * float64(v2) / float64(n)
}

func TestWeightedTargetsSplitAndReload(t *testing.T) {
	// peak_ewma is left to the balancer's unit test, where latencies are
	// set: on loopback they are noise, and noise rightly steers it.
	for _, policy := range []string{"round_robin", "least_request"} {
		t.Run(policy, func(t *testing.T) {
			var c1, c2 atomic.Int64
			v1, v2 := namedBackend(t, "v1", &c1), namedBackend(t, "v2", &c2)
			gw := startGateway(t, weightedConfig(v1, v2, 90, 10, policy))
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
			defer client.CloseIdleConnections()
			n := 10000
			if policy != "round_robin" {
				n = 3000 // a random split: 2 points are 3.6 standard deviations at 3000
			}
			if got := split(t, client, gw.url, n); math.Abs(got-10) > 2 {
				t.Fatalf("v2 got %.2f%% of %d requests, want 10%% within 2 points", got, n)
			}
			before1, before2 := c1.Load(), c2.Load()
			if err := gw.srv.Reload(weightedConfig(v1, v2, 50, 50, policy)); err != nil {
				t.Fatal(err)
			}
			if got := split(t, client, gw.url, 2000); math.Abs(got-50) > 5 {
				t.Errorf("after the reload v2 got %.2f%%, want 50%%", got)
			}
			if c1.Load() != before1 || c2.Load() != before2 {
				t.Errorf("the reload closed upstream connections (v1 %d->%d, v2 %d->%d): the pools must be kept",
					before1, c1.Load(), before2, c2.Load())
			}
			if err := gw.srv.Reload(weightedConfig(v1, v2, 0, 1, policy)); err != nil {
				t.Fatal(err)
			}
			if got := split(t, client, gw.url, 200); got != 100 {
				t.Errorf("with v1 at weight 0, v2 got %.1f%%, want all: weight 0 drains", got)
			}
		})
	}
}

func TestWeightValidation(t *testing.T) {
	cfg := weightedConfig("127.0.0.1:1", "127.0.0.1:2", 0, 0, "round_robin")
	cfg.Defaults()
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "upstreams.app.targets: every weight is 0") {
		t.Errorf("Validate = %v, want every weight 0 refused", err)
	}
	cfg = weightedConfig("127.0.0.1:1", "127.0.0.1:2", -1, 2_000_000, "round_robin")
	cfg.Defaults()
	err = cfg.Validate()
	for _, want := range []string{"upstreams.app.targets[0].weight: must be between 0", "upstreams.app.targets[1].weight: must be between 0"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want %q", err, want)
		}
	}
}
