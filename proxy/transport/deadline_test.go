package transport

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// scriptedUpstream serves one connection: for each request it runs the
// next step, which writes the answer (and may wait).
func scriptedUpstream(t *testing.T, steps ...func(c net.Conn, req *http.Request)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		for _, step := range steps {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			step(c, req)
		}
		_, _ = io.Copy(io.Discard, br)
	}()
	return ln.Addr().String()
}

func write(c net.Conn, s string) { _, _ = io.WriteString(c, s) }

// The response head's deadline bounds the head only: a body that comes
// later than it is read whole, on a fresh connection or a reused one
// whose last body needed no read (and kept the deadline meanwhile).
func TestHeadDeadlineSparesTheBody(t *testing.T) {
	slowBody := func(c net.Conn, _ *http.Request) {
		write(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab")
		time.Sleep(600 * time.Millisecond)
		write(c, "cd")
	}
	quick := func(c net.Conn, _ *http.Request) { write(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") }
	addr := scriptedUpstream(t, quick, slowBody, quick, func(c net.Conn, _ *http.Request) {
		time.Sleep(600 * time.Millisecond) // past the head deadline
		write(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	tr := New(Config{ResponseHeaderTimeout: 250 * time.Millisecond})
	defer tr.Close()
	get := func() (string, error) {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://"+addr+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := tr.RoundTrip(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	for i, want := range []string{"ok", "abcd", "ok"} {
		if got, err := get(); got != want || err != nil {
			t.Fatalf("response %d: %q, %v; want %q", i, got, err, want)
		}
	}
	if _, err := get(); err == nil || !isTimeout(err) {
		t.Errorf("a head later than response_header: %v, want a timeout", err)
	}
}

// Without a response head timeout, the wait for 100 Continue does not
// bound the final head that follows the body.
func TestContinueWaitDoesNotBoundTheHead(t *testing.T) {
	addr := scriptedUpstream(t, func(c net.Conn, req *http.Request) {
		write(c, "HTTP/1.1 100 Continue\r\n\r\n")
		_, _ = io.Copy(io.Discard, req.Body)
		time.Sleep(600 * time.Millisecond) // past ExpectContinueTimeout
		write(c, "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok")
	})
	tr := New(Config{ExpectContinueTimeout: 250 * time.Millisecond})
	defer tr.Close()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, "http://"+addr+"/", strings.NewReader("body"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Expect", "100-continue")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("RoundTrip: %v, want the 201 after the body", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("status %d, want 201", resp.StatusCode)
	}
}
