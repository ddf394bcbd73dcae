package main

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
)

// TestDemoRedirectsAndCompresses: the demo's plain-HTTP listener answers
// 308 to the edge, and the edge compresses the web page for a client that
// accepts zstd or gzip.
func TestDemoRedirectsAndCompresses(t *testing.T) {
	screen := &drawtest.Buffer{}
	d := startDemo(t, io.Discard, screen)
	re := regexp.MustCompile(`curl -si http://localhost:(\d+)/`)
	poll(t, 10*time.Second, "the redirect line of the banner", func() bool { return re.MatchString(screen.String()) })
	port := re.FindStringSubmatch(screen.String())[1]
	req, _ := http.NewRequest("GET", "http://127.0.0.1:"+port+"/api/todos?done=1", nil)
	req.Host = "localhost:" + port
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := d.base + "/api/todos?done=1"; resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
		t.Errorf("plain HTTP: %d Location %q, want 308 to %s", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	for _, coding := range []string{"zstd", "gzip"} {
		req, _ := http.NewRequest("GET", d.base+"/", nil)
		req.Header.Set("Accept-Encoding", coding)
		resp, err := d.client.Transport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.Header.Get("Content-Encoding") != coding || !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
			t.Errorf("web page with Accept-Encoding %s: Content-Encoding %q, Vary %q", coding, resp.Header.Get("Content-Encoding"), resp.Header.Get("Vary"))
		}
		if len(body) == 0 || strings.Contains(string(body), "<title>") {
			t.Errorf("%s body of %d bytes is not encoded", coding, len(body))
		}
	}
}
