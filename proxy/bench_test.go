package proxy_test

import (
	"io"
	"log/slog"
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
