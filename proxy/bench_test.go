package proxy_test

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/drawbridge-proxy/drawbridge/proxy"
)

// BenchmarkProxy compares a client going straight to a backend with the
// same client going through drawbridge, in one run, so the ratio of the two
// ns/op figures is the gateway's cost on this machine.
func BenchmarkProxy(b *testing.B) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "hello from the backend\n")
	}))
	defer backend.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	run := func(b *testing.B, url string) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				resp, err := client.Get(url)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	b.Run("direct", func(b *testing.B) { run(b, backend.URL+"/") })
	for _, access := range []bool{false, true} {
		name := "drawbridge/access_log_off"
		if access {
			name = "drawbridge/access_log_on"
		}
		b.Run(name, func(b *testing.B) {
			cfg := oneRoute(hostOf(backend))
			cfg.AccessLog.Disabled = !access
			l := cfg.Listeners["edge"]
			l.Address = "127.0.0.1:0"
			cfg.Listeners["edge"] = l
			srv, err := proxy.New(cfg, proxy.Deps{Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
			if err != nil {
				b.Fatal(err)
			}
			stop := serveForBench(b, srv)
			defer stop()
			run(b, "http://"+srv.Addr("edge").String()+"/")
		})
	}
}

// BenchmarkTCPThroughput streams 32 MiB per op to a sink, straight and
// through a tcp listener, in one run: MB/s of the two is the relay's cost.
func BenchmarkTCPThroughput(b *testing.B) {
	sink, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	go func() {
		for {
			c, err := sink.Accept()
			if err != nil {
				return
			}
			go func() {
				n, _ := io.Copy(io.Discard, c)
				fmt.Fprintf(c, "%d", n)
				c.Close()
			}()
		}
	}()
	const size = 32 << 20
	chunk := make([]byte, 256<<10)
	send := func(b *testing.B, addr string) {
		b.SetBytes(size)
		for i := 0; i < b.N; i++ {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			for sent := 0; sent < size; sent += len(chunk) {
				if _, err := c.Write(chunk); err != nil {
					b.Fatal(err)
				}
			}
			_ = c.(*net.TCPConn).CloseWrite()
			got, _ := io.ReadAll(c)
			c.Close()
			if string(got) != fmt.Sprint(size) {
				b.Fatalf("sink read %q bytes", got)
			}
		}
	}
	b.Run("direct", func(b *testing.B) { send(b, sink.Addr().String()) })
	b.Run("drawbridge", func(b *testing.B) {
		cfg := oneRoute(sink.Addr().String())
		l := cfg.Listeners["edge"]
		l.Protocol, l.Address = proxy.ProtocolTCP, "127.0.0.1:0"
		cfg.Listeners["edge"] = l
		u := cfg.Upstreams["app"]
		u.Protocol = proxy.ProtocolTCP
		cfg.Upstreams["app"] = u
		srv, err := proxy.New(cfg, proxy.Deps{Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
		if err != nil {
			b.Fatal(err)
		}
		stop := serveForBench(b, srv)
		defer stop()
		send(b, srv.Addr("edge").String())
	})
}
