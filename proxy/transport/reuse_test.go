package transport

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// cannedResponses serves each request on a connection with the next of
// responses, in turn, and counts the connections it accepted.
func cannedResponses(t *testing.T, responses ...string) (string, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var accepted atomic.Int32
	var next atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func(c net.Conn) {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, req.Body)
					i := int(next.Add(1)-1) % len(responses)
					if _, err := io.WriteString(c, responses[i]); err != nil {
						return
					}
				}
			}(c)
		}
	}()
	return ln.Addr().String(), &accepted
}

// The response, its header map and body reader are the connection's:
// each response on a reused connection must still carry only its own
// fields and trailers.
func TestReusedResponseIsPerResponse(t *testing.T) {
	addr, accepted := cannedResponses(t,
		"HTTP/1.1 200 OK\r\nX-A: one\r\nX-A: two\r\nTrailer: X-T\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: t1\r\n\r\n",
		"HTTP/1.1 204 No Content\r\nX-B: b\r\n\r\n",
		"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
	)
	tr := New(Config{})
	defer tr.Close()
	want := []string{"200 a=one,two b= t=t1 abc", "204 a= b=b t= ", "201 a= b= t= ok"}
	for i := range 6 {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://"+addr+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		got := resp.Status[:3] + " a=" + strings.Join(resp.Header["X-A"], ",") + " b=" + resp.Header.Get("X-B") +
			" t=" + resp.Trailer.Get("X-T") + " " + string(b)
		if got != want[i%3] {
			t.Errorf("response %d: %q, want %q", i, got, want[i%3])
		}
		resp.Header.Set("X-Caller", "leftover") // must not reach the next response
		if resp.Header.Get("X-Caller") == "" {
			t.Fatal("the caller's header edit was lost")
		}
		resp.Body.Close()
	}
	if n := accepted.Load(); n != 1 {
		t.Errorf("%d connections, want 1 reused", n)
	}
}

// A connection goes back to the pool when its response body is closed,
// not when it is read to its end: until Close the response is the caller's.
func TestConnectionPooledAtClose(t *testing.T) {
	addr, accepted := cannedResponses(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	tr := New(Config{ResponseHeaderTimeout: 5 * time.Second})
	defer tr.Close()
	get := func() *http.Response {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://"+addr+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := io.ReadAll(resp.Body); string(b) != "ok" {
			t.Fatalf("body %q, want ok", b)
		}
		return resp
	}
	first := get()
	second := get() // the first is read but not closed: a second connection
	if n := accepted.Load(); n != 2 {
		t.Fatalf("%d connections, want 2 (a body read to EOF but not closed keeps its connection)", n)
	}
	first.Body.Close()
	second.Body.Close()
	get().Body.Close()
	get().Body.Close()
	if n := accepted.Load(); n != 2 {
		t.Errorf("%d connections after Close, want the 2 reused", n)
	}
}
