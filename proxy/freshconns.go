package proxy

import (
	"net"
	"net/http"
	"sync"
)

// freshConns tracks connections that have not yet sent a request.
// http.Server.Shutdown treats such a connection as busy for up to five
// seconds (Go issue 22682), so one idle TCP connect - a pre-dialled client
// connection, a port probe - would hold a drain for that long. On shutdown
// they are closed at once: they carry no request.
type freshConns struct {
	mu    sync.Mutex // guards conns
	conns map[net.Conn]struct{}
}

func newFreshConns() *freshConns { return &freshConns{conns: map[net.Conn]struct{}{}} }

// track is an http.Server ConnState hook.
func (f *freshConns) track(c net.Conn, state http.ConnState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if state == http.StateNew {
		f.conns[c] = struct{}{}
	} else {
		delete(f.conns, c)
	}
}

// closeAll closes every connection still waiting for its first request.
func (f *freshConns) closeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.conns {
		c.Close()
		delete(f.conns, c)
	}
}
