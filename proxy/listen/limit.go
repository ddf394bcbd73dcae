package listen

import (
	"errors"
	"net"
	"sync"
	"syscall"
)

// Counter is told of every connection a limited listener opens and closes.
// Its methods must be safe on a nil receiver if the caller passes a typed
// nil.
type Counter interface {
	Opened()
	Closed()
}

// Limit bounds the connections open at once through inner to max: past
// it, Accept waits until one of them is closed. Conns, when not nil,
// counts them. The connections keep TCP half-close (CloseWrite) and the
// raw socket (SyscallConn) of those inner returns.
func Limit(inner net.Listener, max int, conns Counter) net.Listener {
	return &limitListener{Listener: inner, slots: make(chan struct{}, max), conns: conns}
}

type limitListener struct {
	net.Listener
	slots chan struct{}
	conns Counter // nil: not counted
}

func (l *limitListener) Accept() (net.Conn, error) {
	l.slots <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	if l.conns != nil {
		l.conns.Opened()
	}
	return &slotConn{Conn: c, l: l}, nil
}

func (l *limitListener) release() {
	<-l.slots
	if l.conns != nil {
		l.conns.Closed()
	}
}

// slotConn holds one of its listener's slots until the first Close.
type slotConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *slotConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.l.release)
	return err
}

// SyscallConn lets the native engine wait for readiness on the socket
// (proxy/netpoll) through the wrapper.
func (c *slotConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}

// CloseWrite keeps TCP half-close working through the wrapper.
func (c *slotConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}
