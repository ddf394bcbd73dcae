package handshake

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"
)

// DefaultTimeout bounds a handshake when Options.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// Options tune a Listener.
type Options struct {
	// Timeout bounds each handshake. Zero: DefaultTimeout.
	Timeout time.Duration
	// MaxPending bounds handshakes in progress; more connections wait in
	// the kernel's accept queue. Zero: no bound.
	MaxPending int
	// Failed is called with the peer's address and the error of every
	// handshake that fails while the listener is open (to count and log
	// it). Zero: failures are dropped silently.
	Failed func(remote net.Addr, err error)
}

// Listener accepts from an inner listener and hands out *tls.Conn values
// whose handshake has finished.
type Listener struct {
	inner  net.Listener
	cfg    *tls.Config
	opts   Options
	ready  chan net.Conn
	ctx    context.Context
	cancel context.CancelFunc
	sem    chan struct{} // nil: no bound on pending handshakes
	wg     sync.WaitGroup

	mu      sync.Mutex            // guards the following fields
	pending map[net.Conn]struct{} // connections handshaking; Close closes them
	closed  bool                  // set by Close: no handshake starts after it

	failOnce sync.Once
	err      error         // the inner listener's terminal error
	done     chan struct{} // closed once err is set
	closing  sync.Once
}

var _ net.Listener = (*Listener)(nil)

// NewListener starts accepting from inner and handshaking with cfg. Close
// the Listener to stop; it closes inner.
func NewListener(inner net.Listener, cfg *tls.Config, opts Options) *Listener {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Listener{inner: inner, cfg: cfg, opts: opts, ready: make(chan net.Conn),
		ctx: ctx, cancel: cancel, done: make(chan struct{}), pending: map[net.Conn]struct{}{}}
	if opts.MaxPending > 0 {
		l.sem = make(chan struct{}, opts.MaxPending)
	}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	for {
		if !l.acquire() {
			l.fail(net.ErrClosed)
			return
		}
		c, err := l.inner.Accept()
		if err != nil {
			l.release()
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && l.ctx.Err() == nil {
				continue
			}
			l.fail(err)
			return
		}
		l.wg.Add(1)
		go l.handshake(c)
	}
}

// acquire takes a pending-handshake slot; false once the listener closes.
func (l *Listener) acquire() bool {
	if l.sem == nil {
		return true
	}
	select {
	case l.sem <- struct{}{}:
		return true
	case <-l.ctx.Done():
		return false
	}
}

func (l *Listener) release() {
	if l.sem != nil {
		<-l.sem
	}
}

// handshake bounds the handshake by the socket's deadline; Close ends it
// early by closing the socket. (HandshakeContext with a timeout context
// would start a goroutine per handshake to watch the context, and switch
// to it and back when the handshake ends.)
func (l *Listener) handshake(c net.Conn) {
	defer l.wg.Done()
	defer l.release()
	if !l.track(c) {
		_ = c.Close()
		return
	}
	tc := tls.Server(c, l.cfg)
	err := Serve(tc, l.opts.Timeout)
	l.untrack(c)
	if err != nil {
		if l.ctx.Err() == nil && l.opts.Failed != nil {
			l.opts.Failed(c.RemoteAddr(), err)
		}
		_ = c.Close()
		return
	}
	select {
	case l.ready <- tc:
	case <-l.ctx.Done():
		_ = tc.Close()
	}
}

// Serve runs tc's server handshake within timeout, then clears the
// deadline: the connection's user sets its own. The bound is the socket
// deadline, not HandshakeContext with a timeout context: that starts a
// goroutine per handshake to watch the context and waits for it to end,
// a switch to another goroutine and back on every new connection (plus
// the context's timer), for the bound the deadline gives as well.
func Serve(tc *tls.Conn, timeout time.Duration) error {
	if err := tc.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	if err := tc.Handshake(); err != nil { //nolint:noctx // bounded by the socket deadline above, see the doc comment
		return err
	}
	return tc.SetDeadline(time.Time{})
}

// track registers a handshaking connection; false once Close has begun.
func (l *Listener) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.pending[c] = struct{}{}
	return true
}

func (l *Listener) untrack(c net.Conn) {
	l.mu.Lock()
	delete(l.pending, c)
	l.mu.Unlock()
}

// closePending ends every handshake in progress and any that would start.
func (l *Listener) closePending() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	for c := range l.pending {
		_ = c.Close()
	}
}

func (l *Listener) fail(err error) {
	l.failOnce.Do(func() { l.err = err; close(l.done) })
}

// Accept returns the next connection with a finished handshake.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.done:
		return nil, l.err
	}
}

// Close stops accepting, ends pending handshakes and waits for them. It
// is idempotent.
func (l *Listener) Close() error {
	var err error
	l.closing.Do(func() {
		l.cancel()
		l.closePending()
		err = l.inner.Close()
		l.wg.Wait()
		l.fail(net.ErrClosed)
	})
	return err
}

// Addr returns the inner listener's address.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }
