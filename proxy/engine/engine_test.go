package engine_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/proxy/engine"
)

// seen records what the handler received.
type seen struct {
	mu   sync.Mutex
	reqs []string // "METHOD target body"
}

func (s *seen) add(r string) {
	s.mu.Lock()
	s.reqs = append(s.reqs, r)
	s.mu.Unlock()
}

func (s *seen) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.reqs...)
}

// serve starts an engine on 127.0.0.1 whose handler echoes the request
// and returns its address.
func serve(t *testing.T, cfg engine.Config, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Handler = h
	srv := engine.New(cfg)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { srv.ServeConn(c) })
		}
	})
	t.Cleanup(func() { ln.Close(); srv.Close(); wg.Wait() })
	return ln.Addr().String()
}

func echo(s *seen) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			s.add("BODY-ERROR " + r.URL.RequestURI())
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		s.add(r.Method + " " + r.URL.RequestURI() + " " + string(b))
		w.Header().Set("X-Host", r.Host)
		fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.RequestURI(), b)
	})
}

// exchange writes raw bytes and reads everything until the server closes
// or the deadline passes.
func exchange(t *testing.T, addr, raw string) (string, bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	b, err := io.ReadAll(c)
	closed := err == nil // EOF: the server closed; a timeout: it kept the connection
	return string(b), closed
}

func TestStrictProfileRefusesAndCloses(t *testing.T) {
	cases := []struct {
		name, raw  string
		wantStatus string
	}{
		{"CL.TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG", "400"},
		{"TE.CL", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\nGPOST / HTTP/1.1\r\n\r\n0\r\n\r\n", "400"},
		{"obs-folded TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding:\r\n chunked\r\n\r\nabc", "400"},
		{"TE with space", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", "400"},
		{"TE identity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", "501"},
		{"TE on HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.0\r\n\r\n", "400"},
		{"two lengths", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", "400"},
		{"signed length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc", "400"},
		{"bare LF", "GET / HTTP/1.1\nHost: a\n\n", "400"},
		{"bare CR", "GET / HTTP/1.1\r\nHost: a\rX: y\r\n\r\n", "400"},
		{"no Host", "GET / HTTP/1.1\r\n\r\n", "400"},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "400"},
		{"absolute-form mismatch", "GET http://evil/ HTTP/1.1\r\nHost: a\r\n\r\n", "400"},
		{"NUL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", "400"},
		{"bad chunk size", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", "400"},
		{"HTTP/2.0 line", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", "505"},
		{"long line", "GET /" + strings.Repeat("a", 9000) + " HTTP/1.1\r\nHost: a\r\n\r\n", "414"},
		{"big head", "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("p", 100)+"\r\n", 700) + "\r\n", "431"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var s seen
			addr := serve(t, engine.Config{}, echo(&s))
			got, closed := exchange(t, addr, tc.raw)
			if !strings.HasPrefix(got, "HTTP/1.1 "+tc.wantStatus+" ") {
				t.Fatalf("got %q, want status %s", firstLine(got), tc.wantStatus)
			}
			if !closed {
				t.Error("connection kept open after a framing refusal")
			}
			if n := strings.Count(got, "HTTP/1.1 "); n != 1 {
				t.Errorf("got %d responses, want 1:\n%s", n, got)
			}
			// A chunked body that fails mid-way reaches the handler as an error, never as a request.
			for _, r := range s.all() {
				if !strings.HasPrefix(r, "BODY-ERROR") {
					t.Errorf("handler saw %q", r)
				}
			}
		})
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}

func TestPipelinedRequestsAnsweredInOrder(t *testing.T) {
	var s seen
	addr := serve(t, engine.Config{}, echo(&s))
	raw := "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n" +
		"POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello" +
		"POST /3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\nX-T: v\r\n\r\n" +
		"GET /4 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
	got, closed := exchange(t, addr, raw)
	if !closed {
		t.Error("Connection: close did not close")
	}
	want := []string{"GET /1 ", "POST /2 hello", "POST /3 abc", "GET /4 "}
	if diff := strings.Join(s.all(), "|"); diff != strings.Join(want, "|") {
		t.Errorf("handler saw %q, want %q", s.all(), want)
	}
	br := bufio.NewReader(strings.NewReader(got))
	for i, w := range want {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i+1, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if string(b) != w {
			t.Errorf("response %d body %q, want %q", i+1, b, w)
		}
	}
}

func TestResponseFraming(t *testing.T) {
	big := strings.Repeat("x", 10000)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/small":
			io.WriteString(w, "small")
		case "/big":
			io.WriteString(w, big)
		case "/stream":
			io.WriteString(w, "a")
			w.(http.Flusher).Flush()
			io.WriteString(w, "b")
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
			io.WriteString(w, "never")
		case "/trailers":
			w.Header().Set("Trailer", "X-Sum")
			w.(http.Flusher).Flush()
			io.WriteString(w, "data")
			w.Header().Set("X-Sum", "42")
		}
	})
	addr := serve(t, engine.Config{}, h)
	cases := []struct {
		name, raw, wantHead, wantBody string
	}{
		{"small gets a length", "GET /small HTTP/1.1\r\nHost: a\r\n\r\n", "Content-Length: 5", "small"},
		{"big is chunked", "GET /big HTTP/1.1\r\nHost: a\r\n\r\n", "Transfer-Encoding: chunked", big},
		{"flushed is chunked", "GET /stream HTTP/1.1\r\nHost: a\r\n\r\n", "Transfer-Encoding: chunked", "ab"},
		{"HTTP/1.0 is close-delimited", "GET /big HTTP/1.0\r\n\r\n", "Connection: close", big},
		{"HEAD has no body", "HEAD /small HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 200", ""},
		{"204 has no body", "GET /nocontent HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 204", ""},
		{"trailers", "GET /trailers HTTP/1.1\r\nHost: a\r\n\r\n", "Transfer-Encoding: chunked", "data"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, tc.raw)
			method := strings.Fields(tc.raw)[0]
			resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			var head strings.Builder
			head.WriteString(resp.Proto + " " + resp.Status + "\r\n")
			resp.Header.Write(&head)
			if len(resp.TransferEncoding) > 0 {
				head.WriteString("Transfer-Encoding: " + resp.TransferEncoding[0] + "\r\n")
			}
			if resp.ContentLength >= 0 && resp.Header.Get("Content-Length") == "" && method != "HEAD" && resp.StatusCode != 204 {
				fmt.Fprintf(&head, "Content-Length: %d\r\n", resp.ContentLength)
			}
			if resp.Close {
				head.WriteString("Connection: close\r\n")
			}
			if !strings.Contains(head.String(), tc.wantHead) {
				t.Errorf("head lacks %q:\n%s", tc.wantHead, head.String())
			}
			if string(b) != tc.wantBody {
				t.Errorf("body %d bytes, want %d", len(b), len(tc.wantBody))
			}
			if tc.name == "trailers" && resp.Trailer.Get("X-Sum") != "42" {
				t.Errorf("trailer X-Sum = %q, want 42", resp.Trailer.Get("X-Sum"))
			}
		})
	}
}

func TestExpectContinue(t *testing.T) {
	var s seen
	addr := serve(t, engine.Config{}, echo(&s))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST /up HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
	br := bufio.NewReader(c)
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
		t.Fatalf("got %q, %v; want 100 Continue first", line, err)
	}
	br.ReadString('\n') // the blank line after 100
	io.WriteString(c, "hi")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "POST /up hi" {
		t.Errorf("got %q", b)
	}
}

func TestSlowHeadIsCut(t *testing.T) {
	var s seen
	addr := serve(t, engine.Config{ReadHeaderTimeout: 200 * time.Millisecond}, echo(&s))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\n")
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err = io.ReadAll(c)
	if err != nil {
		t.Fatalf("connection not closed by the server: %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("closed after %s, want about 200ms", took)
	}
	if len(s.all()) != 0 {
		t.Errorf("handler saw %q", s.all())
	}
}

func TestShutdownClosesIdleAndWaitsForBusy(t *testing.T) {
	release, entered := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(entered)
			<-release
		}
		io.WriteString(w, "ok")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srv := engine.New(engine.Config{Handler: h})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go srv.ServeConn(c)
		}
	}()
	idle, _ := net.Dial("tcp", ln.Addr().String())
	defer idle.Close()
	io.WriteString(idle, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if _, err := http.ReadResponse(bufio.NewReader(idle), nil); err != nil {
		t.Fatal(err)
	}
	busy, _ := net.Dial("tcp", ln.Addr().String())
	defer busy.Close()
	io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	<-entered
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(t.Context()) }()
	_ = idle.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := idle.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("idle connection: read %v, want EOF", err)
	}
	close(release)
	resp, err := http.ReadResponse(bufio.NewReader(busy), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Close {
		t.Error("response during shutdown lacks Connection: close")
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// A connection idle past the hot wait gives its buffer back and waits on
// the poller; its next request, and one that arrives at the very moment
// of the switch, are still served.
func TestIdleConnectionServedAfterReleasingItsBuffer(t *testing.T) {
	var s seen
	addr := serve(t, engine.Config{IdleTimeout: 10 * time.Second}, echo(&s))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for i, pause := range []time.Duration{0, 1200 * time.Millisecond, 1000 * time.Millisecond, 1500 * time.Millisecond} {
		time.Sleep(pause)
		fmt.Fprintf(c, "GET /%d HTTP/1.1\r\nHost: a\r\n\r\n", i)
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d after %s idle: %v", i, pause, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if want := fmt.Sprintf("GET /%d ", i); string(b) != want {
			t.Errorf("got %q, want %q", b, want)
		}
	}
}

// A handler that refuses a large body without reading it still gets its
// response to the client: the connection lingers instead of resetting.
func TestRefusedBodyResponseSurvivesUnreadBytes(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
	})
	addr := serve(t, engine.Config{}, h)
	body := strings.Repeat("x", 4<<20)
	got, _ := exchange(t, addr, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: "+fmt.Sprint(len(body))+"\r\n\r\n"+body[:1<<20])
	if !strings.HasPrefix(got, "HTTP/1.1 413 ") {
		t.Fatalf("got %q, want 413", firstLine(got))
	}
}
