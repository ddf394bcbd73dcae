package listen

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// Fresh tracks connections that have not yet sent a request.
// http.Server.Shutdown treats such a connection as busy for up to five
// seconds (Go issue 22682), so one idle TCP connect - a pre-dialled client
// connection, a port probe - would hold a drain for that long. On shutdown
// they are closed at once: they carry no request.
type Fresh struct {
	mu    sync.Mutex // guards conns
	conns map[net.Conn]struct{}
}

// NewFresh returns an empty set; Track is its http.Server ConnState hook.
func NewFresh() *Fresh { return &Fresh{conns: map[net.Conn]struct{}{}} }

// Track is an http.Server ConnState hook.
func (f *Fresh) Track(c net.Conn, state http.ConnState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if state == http.StateNew {
		f.conns[c] = struct{}{}
	} else {
		delete(f.conns, c)
	}
}

// CloseAll closes every connection still waiting for its first request.
func (f *Fresh) CloseAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.conns {
		c.Close()
		delete(f.conns, c)
	}
}

// CloseUntil closes fresh connections again and again until done is
// closed (while http.Server.Shutdown runs), so one accepted just before
// the listener closed is caught too.
func (f *Fresh) CloseUntil(done <-chan struct{}) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		f.CloseAll()
		select {
		case <-done:
			return
		case <-t.C:
		}
	}
}
