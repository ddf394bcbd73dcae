package static

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// site writes a small built app into a temporary root and returns it.
func site(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{
		"index.html":                  "<!doctype html><title>app</title>",
		"404.html":                    "<h1>not here</h1>",
		"assets/index-DiwrgTda.js":    "console.log('app')",
		"assets/index-DiwrgTda.js.br": "BR",
		"assets/index-DiwrgTda.js.gz": "GZ",
		"assets/style.css":            "body{}",
		"favicon.ico":                 "ico",
		"docs/index.html":             "docs",
		"empty/keep.txt":              "x",
		".env":                        "SECRET=1",
		".git/config":                 "[core]",
		".well-known/security.txt":    "Contact: x",
	}
	for name, body := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	outside := filepath.Join(t.TempDir(), "secret.txt")
	if err := os.WriteFile(outside, []byte("outside"), 0o644); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{"out.txt": outside, "outdir": filepath.Dir(outside), "in.css": "assets/style.css"} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func serve(t *testing.T, cfg Config) *httptest.Server {
	t.Helper()
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	h, err := New(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

type result struct {
	status int
	header http.Header
	body   string
}

func get(t *testing.T, srv *httptest.Server, method, path string, header map[string]string) result {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return result{resp.StatusCode, resp.Header, string(b)}
}

func TestServe(t *testing.T) {
	srv := serve(t, Config{Root: site(t), SPAFallback: "index.html"})
	for _, tc := range []struct {
		name, method, path string
		header             map[string]string
		status             int
		body               string
		want               map[string]string // response headers
	}{
		{name: "index", path: "/", status: 200, body: "<!doctype html><title>app</title>",
			want: map[string]string{"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}},
		{name: "fingerprinted asset", path: "/assets/index-DiwrgTda.js", status: 200, body: "console.log('app')",
			want: map[string]string{"Content-Type": "text/javascript; charset=utf-8", "Cache-Control": "public, max-age=31536000, immutable", "Vary": "Accept-Encoding", "Content-Encoding": ""}},
		{name: "brotli sibling", path: "/assets/index-DiwrgTda.js", header: map[string]string{"Accept-Encoding": "gzip, br"}, status: 200, body: "BR",
			want: map[string]string{"Content-Type": "text/javascript; charset=utf-8", "Content-Encoding": "br", "Vary": "Accept-Encoding"}},
		{name: "gzip sibling by q-value", path: "/assets/index-DiwrgTda.js", header: map[string]string{"Accept-Encoding": "br;q=0.1, gzip"}, status: 200, body: "GZ",
			want: map[string]string{"Content-Encoding": "gzip"}},
		{name: "no sibling no vary", path: "/assets/style.css", header: map[string]string{"Accept-Encoding": "br"}, status: 200, body: "body{}",
			want: map[string]string{"Content-Type": "text/css; charset=utf-8", "Cache-Control": "no-cache", "Vary": "", "Content-Encoding": ""}},
		{name: "icon type", path: "/favicon.ico", status: 200, body: "ico", want: map[string]string{"Content-Type": "image/vnd.microsoft.icon"}},
		{name: "directory redirect", path: "/docs?x=1", status: 301, want: map[string]string{"Location": "docs/?x=1"}},
		{name: "directory index", path: "/docs/", status: 200, body: "docs"},
		{name: "dotfile", path: "/.env", status: 404},
		{name: "dot directory", path: "/.git/config", status: 404},
		{name: "well-known served", path: "/.well-known/security.txt", status: 200, body: "Contact: x"},
		{name: "symlink out of root", path: "/out.txt", status: 404},
		{name: "symlinked directory out of root", path: "/outdir/secret.txt", status: 404},
		{name: "symlink inside root", path: "/in.css", status: 200, body: "body{}"},
		{name: "spa route", path: "/todos/42", status: 200, body: "<!doctype html><title>app</title>", want: map[string]string{"Cache-Control": "no-cache"}},
		{name: "spa by accept", path: "/v1.2", header: map[string]string{"Accept": "text/html,*/*"}, status: 200, body: "<!doctype html><title>app</title>"},
		{name: "missing asset is 404", path: "/assets/gone-12345678.js", status: 404},
		{name: "post refused", method: "POST", path: "/", status: 405, want: map[string]string{"Allow": "GET, HEAD"}},
		{name: "head", method: "HEAD", path: "/assets/style.css", status: 200, want: map[string]string{"Content-Length": "6"}},
		{name: "range", path: "/assets/style.css", header: map[string]string{"Range": "bytes=0-3"}, status: 206, body: "body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = "GET"
			}
			got := get(t, srv, method, tc.path, tc.header)
			if got.status != tc.status {
				t.Fatalf("status %d, want %d (body %q)", got.status, tc.status, got.body)
			}
			if tc.body != "" && got.body != tc.body {
				t.Errorf("body %q, want %q", got.body, tc.body)
			}
			for k, v := range tc.want {
				if g := got.header.Get(k); g != v {
					t.Errorf("%s = %q, want %q", k, g, v)
				}
			}
		})
	}
}

func TestConditional(t *testing.T) {
	srv := serve(t, Config{Root: site(t)})
	first := get(t, srv, "GET", "/assets/style.css", nil)
	tag, lm := first.header.Get("ETag"), first.header.Get("Last-Modified")
	if tag == "" || lm == "" {
		t.Fatalf("ETag %q, Last-Modified %q: want both", tag, lm)
	}
	if got := get(t, srv, "GET", "/assets/style.css", map[string]string{"If-None-Match": tag}); got.status != 304 {
		t.Errorf("If-None-Match: status %d, want 304", got.status)
	}
	if got := get(t, srv, "GET", "/assets/style.css", map[string]string{"If-Modified-Since": lm}); got.status != 304 {
		t.Errorf("If-Modified-Since: status %d, want 304", got.status)
	}
	br := get(t, srv, "GET", "/assets/index-DiwrgTda.js", map[string]string{"Accept-Encoding": "br"})
	plain := get(t, srv, "GET", "/assets/index-DiwrgTda.js", nil)
	if br.header.Get("ETag") == plain.header.Get("ETag") {
		t.Errorf("the br and identity representations share ETag %s; they must differ", br.header.Get("ETag"))
	}
}

func TestNoListing(t *testing.T) {
	srv := serve(t, Config{Root: site(t)})
	if got := get(t, srv, "GET", "/empty/", nil); got.status != 404 {
		t.Errorf("a directory without an index: status %d body %q, want 404 and no listing", got.status, got.body)
	}
}

func TestNotFoundPage(t *testing.T) {
	srv := serve(t, Config{Root: site(t), NotFound: "404.html"})
	got := get(t, srv, "GET", "/nope", nil)
	if got.status != 404 || got.body != "<h1>not here</h1>" || got.header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("got %d %q %q, want the configured 404 page", got.status, got.header.Get("Content-Type"), got.body)
	}
}

func TestTraversalByHandler(t *testing.T) {
	h, err := New(Config{Root: site(t), Index: "index.html"}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/../secret.txt", "/..", "/assets/../../etc/passwd", "/outdir/../out.txt"} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/", nil)
		r.URL.Path = p
		h.ServeHTTP(w, r)
		if w.Code != 404 && w.Code != 200 || strings.Contains(w.Body.String(), "outside") {
			t.Errorf("%s: status %d body %q: must never leave the root", p, w.Code, w.Body.String())
		}
	}
}

func TestNewChecksFiles(t *testing.T) {
	root := site(t)
	_, err := New(Config{Root: root, Index: "index.html", SPAFallback: "app.html", NotFound: "docs"}, Deps{})
	if err == nil || !strings.Contains(err.Error(), "spa_fallback:") || !strings.Contains(err.Error(), "not_found:") {
		t.Errorf("New = %v, want both spa_fallback and not_found reported", err)
	}
	if _, err := New(Config{Root: filepath.Join(root, "missing")}, Deps{}); err == nil || !strings.HasPrefix(err.Error(), "root:") {
		t.Errorf("New with a missing root = %v, want a root: error", err)
	}
}

func TestValidate(t *testing.T) {
	c := Config{Root: "relative", Index: "a/b.html", SPAFallback: "../x.html", NotFound: ".hidden.html"}
	err := c.Validate()
	for _, key := range []string{"root:", "index:", "spa_fallback:", "not_found:"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("Validate = %v, want a problem under %s", err, key)
		}
	}
	if err := (&Config{}).Validate(); err == nil || err.Error() != "root: is required" {
		t.Errorf("Validate of zero = %v, want root: is required", err)
	}
}

func TestFingerprinted(t *testing.T) {
	for name, want := range map[string]bool{
		"index-DiwrgTda.js": true, "main.3f9a2b1c.js": true, "main.3f9a2b1c.chunk.js": true, "app-5WJ3ZQKX.css": true,
		"index.html": false, "bootstrap.min.js": false, "jquery-ui.js": false, "some-component.js": false, "logo.png": false,
		"12345678.js": false,
	} {
		if got := fingerprinted(name); got != want {
			t.Errorf("fingerprinted(%q) = %v, want %v", name, got, want)
		}
	}
}
