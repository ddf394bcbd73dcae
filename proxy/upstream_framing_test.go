package proxy_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/drawbridge-proxy/drawbridge/proxy"
)

// rawUpstream answers every request on every connection with reply, and
// counts the connections it accepted.
func rawUpstream(t *testing.T, reply string) (addr string, accepted *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted = &atomic.Int64{}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			wg.Go(func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, req.Body)
					if _, err := io.WriteString(c, reply); err != nil {
						return
					}
				}
			})
		}
	})
	return ln.Addr().String(), accepted
}

// A response two parsers could frame differently is a 502, and the
// native client never reuses the connection it came on; a clean one keeps
// its connection.
func TestNativeClientRefusesAmbiguousResponses(t *testing.T) {
	cases := []struct {
		name, reply string
		want        int
		reuse       bool
	}{
		{"clean", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 200, true},
		{"CL and TE", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", 502, false},
		{"two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", 502, false},
		{"obs-fold", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX: a\r\n b\r\n\r\nok", 502, false},
		{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", 502, false},
		{"unknown coding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nok", 502, false},
		{"bad status line", "HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok", 502, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr, accepted := rawUpstream(t, tc.reply)
			cfg := oneRoute(addr)
			up := cfg.Upstreams["app"]
			up.HTTP1 = proxy.HTTP1Native
			up.Retries.Attempts = 1
			up.Breaker.Disabled = true
			cfg.Upstreams["app"] = up
			gw := startGateway(t, cfg)
			for i := 0; i < 3; i++ {
				resp, err := http.Get("http://" + gw.addr + "/x")
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.want {
					t.Fatalf("request %d: status %d, want %d (body %q)", i+1, resp.StatusCode, tc.want, b)
				}
				if tc.want == 200 && string(b) != "ok" {
					t.Errorf("body %q, want ok", b)
				}
				if tc.want == 502 && !strings.Contains(string(b), "bad gateway") {
					t.Errorf("body %q lacks the JSON error", b)
				}
			}
			switch n := accepted.Load(); {
			case tc.reuse && n != 1:
				t.Errorf("upstream accepted %d connections for 3 requests, want 1 (keep-alive)", n)
			case !tc.reuse && n != 3:
				t.Errorf("upstream accepted %d connections for 3 refused responses, want 3 (never reused)", n)
			}
		})
	}
}
