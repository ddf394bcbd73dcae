package proxy_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func wsEchoBackend(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, append([]byte("echo:"), msg...)); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestWebSocketThroughGateway(t *testing.T) {
	gw := startGateway(t, oneRoute(hostOf(wsEchoBackend(t))))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+gw.addr+"/ws", nil)
	if err != nil {
		t.Fatalf("dial through gateway: %v", err)
	}
	defer c.CloseNow()
	for i := 0; i < 20; i++ {
		want := fmt.Sprintf("message %d", i)
		if err := c.Write(ctx, websocket.MessageText, []byte(want)); err != nil {
			t.Fatal(err)
		}
		_, got, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "echo:"+want {
			t.Fatalf("got %q, want %q", got, "echo:"+want)
		}
	}
	c.Close(websocket.StatusNormalClosure, "")
}

// Server-sent events must reach the client as they are written, not when
// the stream ends, and must outlive the listener's write timeout.
func TestServerSentEventsStreamImmediately(t *testing.T) {
	release := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 0; i < 3; i++ {
			fmt.Fprintf(w, "data: %d\n\n", i)
			http.NewResponseController(w).Flush()
			if i == 0 {
				select {
				case <-release:
				case <-r.Context().Done():
					return
				}
			}
			time.Sleep(150 * time.Millisecond)
		}
	}))
	defer backend.Close()
	cfg := oneRoute(hostOf(backend))
	l := cfg.Listeners["edge"]
	l.Timeouts.Write = 200 * time.Millisecond
	cfg.Listeners["edge"] = l
	gw := startGateway(t, cfg)

	resp, err := http.Get(gw.url + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	first := make(chan string, 1)
	go func() { line, _ := r.ReadString('\n'); first <- line }()
	select {
	case line := <-first:
		if strings.TrimSpace(line) != "data: 0" {
			t.Fatalf("first line %q, want data: 0", line)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the first event was held back by the gateway")
	}
	close(release)
	var rest strings.Builder
	for {
		line, err := r.ReadString('\n')
		rest.WriteString(line)
		if err != nil {
			break
		}
	}
	if !strings.Contains(rest.String(), "data: 2") {
		t.Errorf("stream was cut before its end (write timeout applied to a stream?); got %q", rest.String())
	}
}
