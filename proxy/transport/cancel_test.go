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

// A request whose context ended before it was written (an HTTP/2 stream
// reset right after its HEADERS) must send nothing upstream and leave the
// pooled connection usable.
func TestCanceledRequestIsNotSent(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted, served atomic.Int32
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
					served.Add(1)
					_, _ = io.Copy(io.Discard, req.Body)
					_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				}
			}(c)
		}
	}()
	tr := New(Config{DialTimeout: time.Second, ResponseHeaderTimeout: 5 * time.Second, MaxIdlePerHost: 4, IdleConnTimeout: time.Minute})
	defer tr.Close()
	get := func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+ln.Addr().String()+"/x", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := tr.RoundTrip(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if string(b) != "ok" {
			t.Fatalf("body = %q, want ok", b)
		}
		return nil
	}
	if err := get(context.Background()); err != nil {
		t.Fatal(err)
	}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for range 3 {
		err := get(canceled)
		if err == nil || !strings.Contains(err.Error(), "not sent") {
			t.Fatalf("canceled request: err = %v, want a not-sent error", err)
		}
	}
	if err := get(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := served.Load(); got != 2 {
		t.Errorf("upstream served %d requests, want 2 (the canceled ones must not be sent)", got)
	}
	if got := accepted.Load(); got != 1 {
		t.Errorf("upstream accepted %d connections, want 1 (nothing dialled or dropped for a canceled request)", got)
	}
}
