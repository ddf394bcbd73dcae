package relay_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/drawbridge-proxy/drawbridge/proxy/relay"
)

// oneTarget is an Upstream of a single target; the gateway's own upstream
// picks among healthy targets and retries on a connect failure.
type oneTarget struct{ addr string }

func (oneTarget) Name() string { return "echo" }

func (u oneTarget) DialStream(ctx context.Context) (net.Conn, string, error) {
	conn, err := relay.Dialer{Protocol: relay.ProtocolTCP, Timeout: time.Second}.Dial(ctx, u.addr)
	return conn, u.addr, err
}

type buffers struct{}

func (buffers) Get() []byte { return make([]byte, 32<<10) }
func (buffers) Put([]byte)  {}

type noMetrics struct{}

func (noMetrics) AuthzDenied(string, string) {}

// echo answers each connection with what it read, until the client's EOF.
func echo() net.Listener {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); c.Close() }()
		}
	}()
	return ln
}

// A listener relays each connection to its route's upstream; a half-close
// passes through, so the client reads the whole answer.
func ExampleListener() {
	backend := echo()
	defer backend.Close()
	cfg := relay.Config{Name: "raw", Protocol: relay.ProtocolTCP, Handshake: time.Second, Idle: time.Minute}
	routes := []relay.Route{{Name: "all", Upstream: oneTarget{backend.Addr().String()}}}
	l := relay.New(cfg, routes, relay.Deps{Buffers: buffers{}, Metrics: noMetrics{}})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go func() { _ = l.Serve(context.Background(), ln) }()

	c, _ := net.Dial("tcp", ln.Addr().String())
	_, _ = c.Write([]byte("hello"))
	_ = c.(*net.TCPConn).CloseWrite()
	got, _ := io.ReadAll(c)
	c.Close()
	fmt.Printf("%s\n", got)

	ln.Close() // stop accepting, then wait for the relays
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.Drain(ctx)
	l.Close()
	// Output: hello
}
