package listen

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
)

// TestFreshDrain runs the drain the gateway runs: Shutdown waits for a
// request in flight while a connection that never sent one is closed.
func TestFreshDrain(t *testing.T) {
	var inflight InFlight
	release := make(chan struct{})
	started := make(chan struct{})
	f := NewFresh()
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			inflight.Begin()
			defer inflight.End()
			close(started)
			<-release
			_, _ = io.WriteString(w, "done")
		}),
		ConnState: f.Track,
	}
	ln := drawtest.Listen(t)
	go func() { _ = srv.Serve(ln) }()

	busy := dial(t, ln.Addr())
	if _, err := io.WriteString(busy, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	<-started
	idle := dial(t, ln.Addr())
	drawtest.WaitFor(t, "the idle connection tracked", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.conns) == 1
	})

	done := make(chan struct{})
	go func() { _ = srv.Shutdown(context.Background()); close(done) }()
	drained := make(chan struct{})
	go func() { f.CloseUntil(done); inflight.Wait(context.Background()); close(drained) }()

	if _, err := idle.Read(make([]byte, 1)); err == nil {
		t.Fatal("the idle connection read a byte during the drain, want it closed")
	}
	close(release)
	resp, err := http.ReadResponse(bufio.NewReader(busy), nil)
	if err != nil {
		t.Fatalf("the request in flight did not finish: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "done" {
		t.Errorf("body %q, want \"done\"", body)
	}
	<-drained
}
