package proxy_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
	"github.com/drawbridge-proxy/drawbridge/proxy"
)

// twoBackends is a config whose route sends everything to upstream "app",
// whose target is a or b.
func routeTo(target string) proxy.Config {
	cfg := oneRoute(target)
	l := cfg.Listeners["edge"]
	l.Address = "127.0.0.1:0"
	cfg.Listeners["edge"] = l
	return cfg
}

func TestReloadSwitchesRoutesAndLetsInFlightRequestsFinish(t *testing.T) {
	started := make(chan struct{})
	oldBackend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(started)
			time.Sleep(400 * time.Millisecond)
		}
		_, _ = io.WriteString(w, "old")
	}))
	defer oldBackend.Close()
	newBackend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "new")
	}))
	defer newBackend.Close()
	gw := startGateway(t, routeTo(hostOf(oldBackend)))

	slow := make(chan string, 1)
	go func() { slow <- body(t, gw.url+"/slow") }()
	<-started
	next := routeTo(hostOf(newBackend))
	// Reload may not bind the listener anew: keep its bound address.
	l := next.Listeners["edge"]
	l.Address = "127.0.0.1:0"
	next.Listeners["edge"] = l
	if err := gw.srv.Reload(next); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if got := body(t, gw.url+"/"); got != "new" {
		t.Errorf("after reload got %q, want the new upstream", got)
	}
	if got := <-slow; got != "old" {
		t.Errorf("the request in flight got %q, want it to finish on the old config", got)
	}
}

func body(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestReloadRejectsBadConfigAndKeepsServing(t *testing.T) {
	backend := echoBackend(t, "app")
	gw := startGateway(t, routeTo(hostOf(backend)))
	bad := routeTo("no-port")
	l := bad.Listeners["edge"]
	l.Routes = append(l.Routes, proxy.RouteConfig{Upstream: "missing", Match: proxy.MatchConfig{PathPrefix: "/x"}})
	bad.Listeners["edge"] = l
	err := gw.srv.Reload(bad)
	if err == nil {
		t.Fatal("Reload accepted a broken config")
	}
	for _, want := range []string{"upstreams.app.targets[0]", "listeners.edge.routes[1].upstream"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not list %s:\n%v", want, err)
		}
	}
	if got := getEcho(t, newRequest(t, "GET", gw.url+"/", nil)); got.Backend != "app" {
		t.Errorf("after a refused reload got %+v", got)
	}
}

func TestReloadKeepsWebSocketsAndRelaysOpen(t *testing.T) {
	ws := wsEchoBackend(t)
	echo := tcpBackend(t, func(c net.Conn) { _, _ = io.Copy(c, c) })
	other := echoBackend(t, "other")
	build := func(extraRoute bool) proxy.Config {
		cfg := proxy.Config{
			Listeners: map[string]proxy.ListenerConfig{
				"edge": {Address: "127.0.0.1:0", Routes: []proxy.RouteConfig{{Upstream: "ws"}}},
				"tcp":  {Address: "127.0.0.1:0", Protocol: proxy.ProtocolTCP, Routes: []proxy.RouteConfig{{Upstream: "echo"}}},
			},
			Upstreams: map[string]proxy.UpstreamConfig{
				"ws":    {Targets: []string{hostOf(ws)}},
				"echo":  {Protocol: proxy.ProtocolTCP, Targets: []string{echo}},
				"other": {Targets: []string{hostOf(other)}},
			},
			ShutdownGrace: 2 * time.Second,
		}
		if extraRoute {
			l := cfg.Listeners["edge"]
			l.Routes = append(l.Routes, proxy.RouteConfig{Match: proxy.MatchConfig{PathPrefix: "/other"}, Upstream: "other"})
			cfg.Listeners["edge"] = l
		}
		return cfg
	}
	gw := startGateway(t, build(false))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+gw.addr+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	relay := dialTCP(t, gw.srv.Addr("tcp").String())

	for i := 0; i < 3; i++ {
		if err := gw.srv.Reload(build(i%2 == 0)); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		if err := c.Write(ctx, websocket.MessageText, []byte("still here")); err != nil {
			t.Fatalf("WebSocket write after reload %d: %v", i, err)
		}
		if _, msg, err := c.Read(ctx); err != nil || string(msg) != "echo:still here" {
			t.Fatalf("WebSocket after reload %d: %q %v", i, msg, err)
		}
		if _, err := relay.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(relay, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("relayed TCP connection after reload %d: %q %v", i, buf, err)
		}
	}
	if got := getEcho(t, newRequest(t, "GET", gw.url+"/other", nil)); got.Backend != "other" {
		t.Errorf("the route added by reload sends to %q", got.Backend)
	}
}

func TestReloadAddsAndRemovesListeners(t *testing.T) {
	backend := echoBackend(t, "app")
	cfg := routeTo(hostOf(backend))
	gw := startGateway(t, cfg)
	added := routeTo(hostOf(backend))
	added.Listeners["second"] = proxy.ListenerConfig{Address: "127.0.0.1:0", Routes: []proxy.RouteConfig{{Upstream: "app"}}}
	if err := gw.srv.Reload(added); err != nil {
		t.Fatal(err)
	}
	second := gw.srv.Addr("second")
	if second == nil {
		t.Fatal("the added listener is not bound")
	}
	if got := getEcho(t, newRequest(t, "GET", "http://"+second.String()+"/", nil)); got.Backend != "app" {
		t.Errorf("added listener: %+v", got)
	}
	if err := gw.srv.Reload(routeTo(hostOf(backend))); err != nil {
		t.Fatal(err)
	}
	drawtest.WaitFor(t, "the removed listener to close", func() bool {
		c, err := net.DialTimeout("tcp", second.String(), time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	if gw.srv.Addr("second") != nil {
		t.Error("the removed listener is still listed")
	}
}

func TestReloadNeedsRestartForSocketChangesOnTheSameAddress(t *testing.T) {
	backend := echoBackend(t, "app")
	cfg := routeTo(hostOf(backend))
	l := cfg.Listeners["edge"]
	l.Address = drawtest.FreeAddr(t) // a fixed port, free a moment ago
	cfg.Listeners["edge"] = l
	gw := startGateway(t, cfg)
	changed := routeTo(hostOf(backend))
	l.Timeouts.Read = 3 * time.Second
	changed.Listeners["edge"] = l
	err := gw.srv.Reload(changed)
	if err == nil || !strings.Contains(err.Error(), "listeners.edge: changing the protocol, tls, timeouts or limits") {
		t.Fatalf("Reload = %v, want it refused: the socket settings changed on the same address", err)
	}
	if got := getEcho(t, newRequest(t, "GET", gw.url+"/", nil)); got.Backend != "app" {
		t.Errorf("after the refused reload: %+v", got)
	}
}

// Reloads under continuous load lose no request.
func TestReloadUnderLoadLosesNothing(t *testing.T) {
	a, b := echoBackend(t, "a"), echoBackend(t, "b")
	gw := startGateway(t, routeTo(hostOf(a)))
	var failures, total atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second}
	for w := 0; w < 4; w++ {
		wg.Go(func() {
			for i := 0; i < 2000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get(gw.url + "/")
				total.Add(1)
				if err != nil {
					failures.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failures.Add(1)
				}
			}
		})
	}
	for i := 0; i < 20; i++ {
		target := hostOf(a)
		if i%2 == 0 {
			target = hostOf(b)
		}
		if err := gw.srv.Reload(routeTo(target)); err != nil && !errors.Is(err, proxy.ErrStopping) {
			t.Fatalf("reload %d: %v", i, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d requests during 20 reloads, %d failed", total.Load(), failures.Load())
	if failures.Load() != 0 {
		t.Errorf("%d of %d requests failed during reloads", failures.Load(), total.Load())
	}
}
