package http1

import (
	"bufio"
	"bytes"
	"net/http"
	"testing"
)

// browserGET is the head a desktop browser sends for a page.
var browserGET = []byte(head(
	"GET /app/dashboard?tab=overview HTTP/1.1",
	"Host: gateway.example.com",
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
	"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
	"Accept-Language: en-US,en;q=0.9",
	"Accept-Encoding: gzip, deflate, br, zstd",
	"Referer: https://gateway.example.com/app/",
	"Cookie: session=0123456789abcdef0123456789abcdef; theme=dark",
	"Connection: keep-alive",
	"Upgrade-Insecure-Requests: 1",
	"Sec-Fetch-Dest: document",
	"Sec-Fetch-Mode: navigate",
	"Sec-Fetch-Site: same-origin",
	"Sec-Fetch-User: ?1",
	"Priority: u=0, i",
))

func BenchmarkParseRequest(b *testing.B) {
	var r Request
	b.SetBytes(int64(len(browserGET)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseRequest(browserGET, &r, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseRequestStd is the baseline: net/http's ReadRequest of the
// same head.
func BenchmarkParseRequestStd(b *testing.B) {
	src := bytes.NewReader(browserGET)
	br := bufio.NewReader(src)
	b.SetBytes(int64(len(browserGET)))
	b.ReportAllocs()
	for b.Loop() {
		src.Reset(browserGET)
		br.Reset(src)
		if _, err := http.ReadRequest(br); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseResponse(b *testing.B) {
	in := []byte(head("HTTP/1.1 200 OK", "Content-Type: text/html; charset=utf-8", "Content-Length: 5120",
		"Cache-Control: no-store", "Date: Wed, 02 Dec 2026 03:00:00 GMT", "Vary: Accept-Encoding"))
	var r Response
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseResponse(in, &r, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

// A reused Request parses a head without allocating (issue 12: the engine's
// steady state allows at most 2 heap objects per request in all).
func TestParseRequestAllocs(t *testing.T) {
	var r Request
	if _, err := ParseRequest(browserGET, &r, Limits{}); err != nil { // sizes r.Fields
		t.Fatal(err)
	}
	for _, in := range [][]byte{
		browserGET,
		[]byte(head("POST http://a.example/x HTTP/1.1", "Host: a.example", "Transfer-Encoding: chunked", "Trailer: x-sum")),
		[]byte(head("CONNECT a.example:443 HTTP/1.1", "Host: a.example:443")),
	} {
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := ParseRequest(in, &r, Limits{}); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%.20q: got %.1f allocations per parse, want 0", in, allocs)
		}
	}
	var resp Response
	in := []byte(head("HTTP/1.1 200 OK", "Content-Length: 5"))
	if allocs := testing.AllocsPerRun(100, func() { _, _ = ParseResponse(in, &resp, Limits{}) }); allocs != 0 {
		t.Errorf("ParseResponse: got %.1f allocations per parse, want 0", allocs)
	}
}
