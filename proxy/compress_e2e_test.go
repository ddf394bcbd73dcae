package proxy_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/drawbridge-proxy/drawbridge/proxy"
	"github.com/drawbridge-proxy/drawbridge/proxy/compress"
)

// bigJSONBackend answers /json with a 64 KiB JSON body and /events with
// a server-sent event stream.
func bigJSONBackend(t *testing.T) string {
	t.Helper()
	body := []byte(`[` + strings.Repeat(`{"id":1,"title":"write the report","done":false},`, 1400) + `{}]`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/events":
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "data: "+strings.Repeat("x", 2000)+"\n\n")
			w.(http.Flusher).Flush()
			time.Sleep(50 * time.Millisecond)
		default:
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("ETag", `"abc"`)
			_, _ = w.Write(body)
		}
	}))
	t.Cleanup(srv.Close)
	return hostOf(srv)
}

func TestCompressionEndToEnd(t *testing.T) {
	tt := newTestTLS(t)
	backend := bigJSONBackend(t)
	for _, tc := range []struct{ name, mode, proto string }{{"http1", proxy.TLSNone, "HTTP/1.1"}, {"http2", proxy.TLSServer, "HTTP/2.0"}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := oneRoute(backend)
			l := cfg.Listeners["edge"]
			l.TLS.Mode = tc.mode
			l.Routes[0].Compression = &compress.Config{}
			cfg.Listeners["edge"] = l
			reg := prometheus.NewRegistry()
			gw := startGatewayWith(t, cfg, proxy.Deps{TLS: tt, Registerer: reg})
			base, tr := gw.url, &http.Transport{DisableCompression: true}
			if tc.mode != proxy.TLSNone {
				base = "https://" + gw.addr
				tr = &http.Transport{DisableCompression: true, ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{RootCAs: tt.pool}}
			}
			defer tr.CloseIdleConnections()
			get := func(path, ae string) (*http.Response, []byte) {
				req, _ := http.NewRequest("GET", base+path, nil)
				if ae != "" {
					req.Header.Set("Accept-Encoding", ae)
				}
				resp, err := tr.RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				if resp.Proto != tc.proto {
					t.Errorf("went over %s, want %s", resp.Proto, tc.proto)
				}
				return resp, b
			}
			plainResp, plain := get("/json", "")
			if plainResp.Header.Get("Content-Encoding") != "" || !strings.Contains(plainResp.Header.Get("Vary"), "Accept-Encoding") {
				t.Errorf("without Accept-Encoding: encoding %q vary %q", plainResp.Header.Get("Content-Encoding"), plainResp.Header.Get("Vary"))
			}
			resp, zipped := get("/json", "gzip")
			if resp.Header.Get("Content-Encoding") != "gzip" || resp.Header.Get("ETag") != `W/"abc"` {
				t.Fatalf("gzip: encoding %q etag %q", resp.Header.Get("Content-Encoding"), resp.Header.Get("ETag"))
			}
			zr, err := gzip.NewReader(bytes.NewReader(zipped))
			if err != nil {
				t.Fatal(err)
			}
			unzipped, _ := io.ReadAll(zr)
			if !bytes.Equal(unzipped, plain) {
				t.Fatalf("decoded %d bytes, want the %d the backend sent", len(unzipped), len(plain))
			}
			if len(zipped)*5 > len(plain) {
				t.Errorf("%d bytes compressed to %d; want at least 5x smaller", len(plain), len(zipped))
			}
			if resp, _ := get("/json", "zstd"); resp.Header.Get("Content-Encoding") != "zstd" {
				t.Errorf("zstd: encoding %q", resp.Header.Get("Content-Encoding"))
			}
			// Server-sent events stream through untouched.
			req, _ := http.NewRequest("GET", base+"/events", nil)
			req.Header.Set("Accept-Encoding", "gzip")
			sse, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			line, _ := bufio.NewReader(sse.Body).ReadString('\n')
			sse.Body.Close()
			if sse.Header.Get("Content-Encoding") != "" || !strings.HasPrefix(line, "data: ") {
				t.Errorf("SSE: encoding %q first line %.20q", sse.Header.Get("Content-Encoding"), line)
			}
			var logged bool
			for _, l := range gw.logs.accessLines(t) {
				logged = logged || l["encoding"] == "gzip"
			}
			if !logged {
				t.Error("no access line with encoding gzip")
			}
			if got := testutil.ToFloat64(mustCounter(t, reg, "drawbridge_compressed_responses_total", map[string]string{"route": "all", "encoding": "gzip"})); got != 1 {
				t.Errorf("compressed gzip responses %v, want 1", got)
			}
		})
	}
}

func TestCompressionValidation(t *testing.T) {
	cfg := oneRoute("127.0.0.1:1")
	cfg.Listeners["edge"].Routes[0].Compression = &compress.Config{Encodings: []string{"br"}, MinSize: -5}
	cfg.Defaults()
	err := cfg.Validate()
	for _, want := range []string{"listeners.edge.routes[0].compression.encodings[0]: unknown encoding", "listeners.edge.routes[0].compression.min_size: "} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want %q", err, want)
		}
	}
}
