package proxy_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
)

func TestGracefulDrain(t *testing.T) {
	started := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		close(started)
		time.Sleep(500 * time.Millisecond)
		_, _ = io.WriteString(w, "finished")
	}))
	defer slow.Close()
	gw := startGateway(t, oneRoute(hostOf(slow)))

	result := make(chan string, 1)
	go func() {
		resp, err := http.Get(gw.url + "/slow")
		if err != nil {
			result <- "error: " + err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		result <- string(b)
	}()
	<-started
	gw.cancel()
	drawtest.WaitFor(t, "readiness to turn false", func() bool { return !gw.srv.Ready() })
	// New connections are refused once draining has begun.
	drawtest.WaitFor(t, "the listener to close", func() bool {
		_, err := http.Get(gw.url + "/new")
		return err != nil
	})
	if got := <-result; got != "finished" {
		t.Errorf("in-flight request got %q, want it to finish during the drain", got)
	}
	select {
	case err := <-gw.done:
		if err != nil {
			t.Errorf("Run returned %v, want nil", err)
		}
		gw.done <- nil
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the drain")
	}
}

func TestDrainCutsUpgradedConnectionsAfterGrace(t *testing.T) {
	cfg := oneRoute(hostOf(wsEchoBackend(t)))
	cfg.ShutdownGrace = 300 * time.Millisecond
	gw := startGateway(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+gw.addr+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()

	stopped := time.Now()
	gw.cancel()
	// Still usable during the grace period.
	if err := c.Write(ctx, websocket.MessageText, []byte("during drain")); err != nil {
		t.Fatalf("write during grace: %v", err)
	}
	if _, msg, err := c.Read(ctx); err != nil || string(msg) != "echo:during drain" {
		t.Fatalf("read during grace: %q, %v", msg, err)
	}
	select {
	case <-gw.done:
		gw.done <- nil
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after the grace period")
	}
	if took := time.Since(stopped); took < 300*time.Millisecond {
		t.Errorf("Run returned after %s, before the grace period ended", took)
	}
	if _, _, err := c.Read(ctx); err == nil {
		t.Error("the WebSocket is still open after the grace period")
	}
}

// A connection that never sent a request must not hold the drain: Go's
// Shutdown alone would wait five seconds for it.
func TestDrainDoesNotWaitForSilentConnections(t *testing.T) {
	cfg := oneRoute(hostOf(echoBackend(t, "app")))
	cfg.ShutdownGrace = 20 * time.Second
	gw := startGateway(t, cfg)
	silent := dialTCP(t, gw.addr)
	defer silent.Close()
	time.Sleep(50 * time.Millisecond) // let the server accept it
	start := time.Now()
	gw.cancel()
	select {
	case <-gw.done:
		gw.done <- nil
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("the drain took %s, held by a connection without a request", took)
	}
}
