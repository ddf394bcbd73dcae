package compress

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// jsonBody is a realistic API answer of about size bytes.
func jsonBody(size int) []byte {
	type item struct {
		ID    int    `json:"id"`
		Title string `json:"title"`
		Done  bool   `json:"done"`
		Owner string `json:"owner"`
	}
	var items []item
	var b []byte
	for i := 0; len(b) < size; i++ {
		items = append(items, item{i, fmt.Sprintf("write the %d. report on item %d", i, i*7), i%3 == 0, "user-" + strconv.Itoa(i%17)})
		if i%64 == 0 {
			b, _ = json.Marshal(items)
		}
	}
	b, _ = json.Marshal(items)
	return b[:size-1]
}

func newCompressor(t testing.TB, cfg Config) *Compressor {
	t.Helper()
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return New(cfg, Deps{})
}

func serve(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(newCompressor(t, Config{}).Wrap(h))
	t.Cleanup(srv.Close)
	return srv
}

func fetch(t *testing.T, url string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func decode(t *testing.T, coding string, b []byte) []byte {
	t.Helper()
	var r io.Reader
	switch coding {
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		r = zr
	default:
		return b
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decoding %s: %v", coding, err)
	}
	return out
}

func TestCompress(t *testing.T) {
	body := jsonBody(64 << 10)
	handler := func(hdr map[string]string, status int, body []byte, withLength bool) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			for k, v := range hdr {
				w.Header().Set(k, v)
			}
			if withLength {
				w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			}
			w.WriteHeader(status)
			_, _ = w.Write(body[:len(body)/2])
			_, _ = w.Write(body[len(body)/2:])
		})
	}
	jsonHdr := map[string]string{"Content-Type": "application/json", "ETag": `"v1"`, "Accept-Ranges": "bytes"}
	for _, tc := range []struct {
		name       string
		h          http.Handler
		accept     map[string]string
		wantEnc    string
		wantVary   bool
		wantETag   string
		wantLength bool
	}{
		{"zstd preferred", handler(jsonHdr, 200, body, true), map[string]string{"Accept-Encoding": "gzip, zstd"}, "zstd", true, `W/"v1"`, false},
		{"gzip by q-value", handler(jsonHdr, 200, body, true), map[string]string{"Accept-Encoding": "zstd;q=0.2, gzip"}, "gzip", true, `W/"v1"`, false},
		{"unknown length", handler(jsonHdr, 200, body, false), map[string]string{"Accept-Encoding": "gzip"}, "gzip", true, `W/"v1"`, false},
		{"not accepted", handler(jsonHdr, 200, body, true), nil, "", true, `"v1"`, true},
		{"identity only", handler(jsonHdr, 200, body, true), map[string]string{"Accept-Encoding": "identity, gzip;q=0"}, "", true, `"v1"`, true},
		{"small", handler(jsonHdr, 200, body[:500], true), map[string]string{"Accept-Encoding": "gzip"}, "", true, `"v1"`, true},
		{"small unknown length", handler(jsonHdr, 200, body[:500], false), map[string]string{"Accept-Encoding": "gzip"}, "", true, `"v1"`, true},
		{"already encoded", handler(map[string]string{"Content-Type": "application/json", "Content-Encoding": "br"}, 200, body, true), map[string]string{"Accept-Encoding": "gzip"}, "br", false, "", true},
		{"no-transform", handler(map[string]string{"Content-Type": "text/html", "Cache-Control": "public, no-transform"}, 200, body, true), map[string]string{"Accept-Encoding": "gzip"}, "", false, "", true},
		{"image", handler(map[string]string{"Content-Type": "image/png"}, 200, body, true), map[string]string{"Accept-Encoding": "gzip"}, "", false, "", true},
		{"no type", handler(nil, 200, body, true), map[string]string{"Accept-Encoding": "gzip"}, "", false, "", true},
		{"range request", handler(jsonHdr, 200, body, true), map[string]string{"Accept-Encoding": "gzip", "Range": "bytes=0-9"}, "", false, `"v1"`, true},
		{"error page compressed too", handler(map[string]string{"Content-Type": "text/html; charset=utf-8"}, 500, body, true), map[string]string{"Accept-Encoding": "gzip"}, "gzip", true, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := serve(t, tc.h)
			resp, got := fetch(t, srv.URL, tc.accept)
			if enc := resp.Header.Get("Content-Encoding"); enc != tc.wantEnc {
				t.Fatalf("Content-Encoding %q, want %q", enc, tc.wantEnc)
			}
			if tc.wantEnc != "br" {
				if plain := decode(t, tc.wantEnc, got); !bytes.Equal(plain, bodyFor(tc.name, body)) {
					t.Fatalf("decoded body differs: %d bytes, want %d", len(plain), len(bodyFor(tc.name, body)))
				}
			}
			if vary := strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding"); vary != tc.wantVary {
				t.Errorf("Vary %q, want Accept-Encoding: %v", resp.Header.Get("Vary"), tc.wantVary)
			}
			if et := resp.Header.Get("ETag"); et != tc.wantETag {
				t.Errorf("ETag %q, want %q", et, tc.wantETag)
			}
			if has := resp.ContentLength >= 0; has != tc.wantLength {
				t.Errorf("Content-Length %d, want known: %v", resp.ContentLength, tc.wantLength)
			}
			if tc.wantEnc == "gzip" || tc.wantEnc == "zstd" {
				if resp.Header.Get("Accept-Ranges") != "" {
					t.Error("Accept-Ranges kept on a compressed response")
				}
				if len(got) > len(body)/3 {
					t.Errorf("compressed to %d of %d bytes; JSON should shrink far more", len(got), len(body))
				}
			}
		})
	}
}

func bodyFor(name string, body []byte) []byte {
	if strings.HasPrefix(name, "small") {
		return body[:500]
	}
	return body
}

func TestNoBodyStatuses(t *testing.T) {
	for _, status := range []int{http.StatusNoContent, http.StatusNotModified} {
		srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
		}))
		resp, _ := fetch(t, srv.URL, map[string]string{"Accept-Encoding": "gzip"})
		if resp.StatusCode != status || resp.Header.Get("Content-Encoding") != "" {
			t.Errorf("%d: got %d with Content-Encoding %q, want it untouched", status, resp.StatusCode, resp.Header.Get("Content-Encoding"))
		}
	}
}

// TestFlushStreams checks that a flush reaches the client through the
// encoder: the first part is readable while the handler still waits.
func TestFlushStreams(t *testing.T) {
	release := make(chan struct{})
	first := bytes.Repeat([]byte("a line of text that streams\n"), 100)
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(first)
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("Flush through the wrapper: %v", err)
		}
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
		_, _ = w.Write([]byte("end\n"))
	}))
	defer close(release)
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("Accept-Encoding", "gzip")
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q, want gzip", resp.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(first))
	if _, err := io.ReadFull(zr, got); err != nil || !bytes.Equal(got, first) {
		t.Fatalf("first part before the handler finished: %v", err)
	}
}

func TestUpgradePassesThrough(t *testing.T) {
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", "test")
		w.WriteHeader(http.StatusSwitchingProtocols)
		c, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("Hijack through the wrapper: %v", err)
			return
		}
		_, _ = rw.WriteString("raw bytes")
		_ = rw.Flush()
		c.Close()
	}))
	resp, _ := fetch(t, srv.URL, map[string]string{"Accept-Encoding": "gzip", "Upgrade": "test", "Connection": "Upgrade"})
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Content-Encoding") != "" {
		t.Errorf("upgrade: %d, Content-Encoding %q", resp.StatusCode, resp.Header.Get("Content-Encoding"))
	}
}

func TestValidate(t *testing.T) {
	c := Config{Encodings: []string{"br", "gzip", "gzip"}, Types: []string{"Text/HTML", "application/json; charset=utf-8", "text/*"}, MinSize: -1}
	err := c.Validate()
	for _, want := range []string{"encodings[0]: unknown encoding", "encodings[2]: gzip is listed twice", "types[0]:", "types[1]:", "min_size:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "types[2]") {
		t.Errorf("text/* refused: %v", err)
	}
}

// BenchmarkCompress64KiBJSON measures the CPU per response and the bytes
// saved on a 64 KiB JSON body, against passing it through.
func BenchmarkCompress64KiBJSON(b *testing.B) {
	body := jsonBody(64 << 10)
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
	})
	for _, coding := range []string{"identity", "gzip", "zstd"} {
		b.Run(coding, func(b *testing.B) {
			wrapped := newCompressor(b, Config{}).Wrap(h)
			req := httptest.NewRequest("GET", "/", nil)
			req.Header.Set("Accept-Encoding", coding)
			var out int
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				rec := &discardWriter{header: http.Header{}}
				wrapped.ServeHTTP(rec, req)
				out = rec.n
			}
			b.ReportMetric(float64(out), "wire-bytes")
			b.ReportMetric(100*(1-float64(out)/float64(len(body))), "%saved")
		})
	}
}

type discardWriter struct {
	header http.Header
	n      int
}

func (d *discardWriter) Header() http.Header         { return d.header }
func (d *discardWriter) WriteHeader(int)             {}
func (d *discardWriter) Write(p []byte) (int, error) { d.n += len(p); return len(p), nil }
