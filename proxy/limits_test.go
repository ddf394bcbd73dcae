package proxy_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/proxy"
)

// At max_connections an http listener keeps serving the connections it
// has, makes a new one wait (the kernel queues it) without an error, and
// serves it once a slot frees: on both HTTP/1 engines.
func TestHTTPMaxConnectionsAtTheLimit(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		b := echoBackend(t, "app")
		cfg := oneRoute(hostOf(b))
		l := cfg.Listeners["edge"]
		l.Limits.MaxConnections = 2
		cfg.Listeners["edge"] = l
		withEngine(cfg, engine)
		gw := startGateway(t, cfg)
		get := func(c net.Conn, br *bufio.Reader, wait time.Duration) error {
			_ = c.SetDeadline(time.Now().Add(wait))
			if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				return err
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return errors.New(resp.Status)
			}
			return nil
		}
		first, second := dialTCP(t, gw.addr), dialTCP(t, gw.addr)
		br1, br2 := bufio.NewReader(first), bufio.NewReader(second)
		for _, p := range []struct {
			c  net.Conn
			br *bufio.Reader
		}{{first, br1}, {second, br2}} {
			if err := get(p.c, p.br, 5*time.Second); err != nil {
				t.Fatal(err)
			}
		}
		third := dialTCP(t, gw.addr)
		br3 := bufio.NewReader(third)
		if err := get(third, br3, 300*time.Millisecond); err == nil {
			t.Fatal("a third connection was served with max_connections: 2")
		}
		for i := range 5 { // the two keep working meanwhile
			if err := get(first, br1, 5*time.Second); err != nil {
				t.Fatalf("existing connection, request %d at the limit: %v", i, err)
			}
		}
		second.Close()
		_ = third.SetDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(br3, nil) // the request it sent while queued
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("after a slot freed the queued connection got %v, %v", resp, err)
		}
		resp.Body.Close()
	})
}

// reloadProbeDuration is how long TestReloadEverySecondUnderLoad runs:
// 5s in CI; DRAWBRIDGE_RELOAD_PROBE=60s for the full minute of the issue.
func reloadProbeDuration(t *testing.T) time.Duration {
	if v := os.Getenv("DRAWBRIDGE_RELOAD_PROBE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("DRAWBRIDGE_RELOAD_PROBE: %v", err)
		}
		return d
	}
	return 5 * time.Second
}

// A reload every second under load, changing another route each time,
// fails no request of the unchanged route, over keep-alive and fresh
// connections, on plain and TLS listeners.
func TestReloadEverySecondUnderLoad(t *testing.T) {
	stable, other := echoBackend(t, "stable"), echoBackend(t, "other")
	tt := newTestTLS(t)
	config := func(i int) proxy.Config {
		routes := []proxy.RouteConfig{
			{Name: "stable", Match: proxy.MatchConfig{PathPrefix: "/stable"}, Upstream: "stable"},
			{Name: "moving", Match: proxy.MatchConfig{PathPrefix: "/moving" + string(rune('a'+i%2))}, Upstream: "other"},
		}
		return proxy.Config{
			Listeners: map[string]proxy.ListenerConfig{
				"edge": {Address: "127.0.0.1:0", Routes: routes},
				"tls":  {Address: "127.0.0.1:0", TLS: proxy.ListenerTLS{Mode: proxy.TLSServer}, Routes: routes},
			},
			Upstreams:     map[string]proxy.UpstreamConfig{"stable": {Targets: []string{hostOf(stable)}}, "other": {Targets: []string{hostOf(other)}}},
			ShutdownGrace: 5 * time.Second,
		}
	}
	gw := startGatewayWith(t, config(0), proxy.Deps{TLS: tt})
	urls := []string{gw.url + "/stable", "https://" + gw.srv.Addr("tls").String() + "/stable"}
	var total, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: w%2 == 1} //nolint:gosec // test CA
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get(urls[(w+i)%2])
				total.Add(1)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = errors.New(resp.Status)
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		})
	}
	deadline := time.Now().Add(reloadProbeDuration(t))
	reloads := 0
	for i := 1; time.Now().Before(deadline); i++ {
		time.Sleep(time.Second)
		if err := gw.srv.Reload(config(i)); err != nil { // same addresses ("127.0.0.1:0"): the sockets are kept
			t.Fatalf("reload %d: %v", i, err)
		}
		reloads++
	}
	close(stop)
	wg.Wait()
	t.Logf("%d requests over %d reloads, %d failed", total.Load(), reloads, failed.Load())
	if failed.Load() != 0 {
		t.Errorf("%d of %d requests failed during reloads; first: %v", failed.Load(), total.Load(), firstErr.Load())
	}
}
