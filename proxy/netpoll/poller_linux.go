//go:build linux

package netpoll

import (
	"errors"
	"os"
	"sync"
	"syscall"
	"time"
)

// The poller's epoll instance. Its descriptor is itself registered with
// Go's network poller (an epoll descriptor is readable while it has events
// ready), so the poller's goroutine sleeps in the runtime like any network
// read and no thread is kept in a blocking epoll_wait. The goroutine runs
// while any connection is registered: when the last one closes, a read
// deadline in the past ends it, and the next registration starts another.
type poller struct {
	epfd int
	raw  syscall.RawConn
	file *os.File // keeps the descriptor open

	mu       sync.Mutex
	waiters  map[int32]*Waiter // by descriptor
	gen      uint32
	running  bool // the loop goroutine is running
	stopping bool // its read deadline is set to end it
}

var (
	shared     *poller
	sharedErr  error
	sharedOnce sync.Once
)

func getPoller() (*poller, error) {
	sharedOnce.Do(func() { shared, sharedErr = newPoller() })
	return shared, sharedErr
}

func newPoller() (*poller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if err := syscall.SetNonblock(epfd, true); err != nil {
		_ = syscall.Close(epfd)
		return nil, err
	}
	f := os.NewFile(uintptr(epfd), "netpoll-epoll")
	raw, err := f.SyscallConn()
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return &poller{epfd: epfd, raw: raw, file: f, waiters: map[int32]*Waiter{}}, nil
}

// loop takes the ready events and hands each to its waiter.
func (p *poller) loop() {
	events := make([]syscall.EpollEvent, 256)
	for {
		var n int
		err := p.raw.Read(func(fd uintptr) bool {
			var err error
			n, err = syscall.EpollWait(int(fd), events, 0)
			if err != nil {
				n = 0
				return !errors.Is(err, syscall.EINTR) && !errors.Is(err, syscall.EAGAIN)
			}
			return n > 0
		})
		if err != nil {
			if p.stop(err) {
				return
			}
			continue
		}
		for i := range n {
			ev := &events[i]
			p.mu.Lock()
			w := p.waiters[ev.Fd]
			p.mu.Unlock()
			if w == nil || w.gen != uint32(ev.Pad) { //nolint:gosec // Pad carries a uint32 generation
				continue // a descriptor that closed, or was reused since
			}
			w.fire()
		}
	}
}

// arm registers fd for one readiness event (level-triggered, so bytes
// already there fire at once: no wakeup is lost between the last read and
// the registration). add says whether fd is new to the epoll set.
func (p *poller) arm(w *Waiter, fd int, add bool) error {
	ev := syscall.EpollEvent{
		Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT,
		Fd:     int32(fd),    //nolint:gosec // a descriptor fits in int32
		Pad:    int32(w.gen), //nolint:gosec // the generation, read back as uint32
	}
	op := syscall.EPOLL_CTL_MOD
	if add {
		op = syscall.EPOLL_CTL_ADD
	}
	err := syscall.EpollCtl(p.epfd, op, fd, &ev)
	switch {
	case errors.Is(err, syscall.ENOENT) && op == syscall.EPOLL_CTL_MOD:
		err = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, fd, &ev)
	case errors.Is(err, syscall.EEXIST) && op == syscall.EPOLL_CTL_ADD:
		err = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_MOD, fd, &ev)
	}
	return err
}

func (p *poller) add(w *Waiter) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gen++
	w.gen = p.gen
	p.waiters[w.fd] = w
	switch {
	case !p.running:
		p.running, p.stopping = true, false
		_ = p.file.SetReadDeadline(time.Time{})
		go p.loop()
	case p.stopping:
		p.stopping = false
		_ = p.file.SetReadDeadline(time.Time{})
	}
}

func (p *poller) remove(w *Waiter) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.waiters[w.fd] == w {
		delete(p.waiters, w.fd)
	}
	if len(p.waiters) == 0 && p.running && !p.stopping {
		p.stopping = true
		_ = p.file.SetReadDeadline(time.Unix(1, 0))
	}
}

// stop is the loop's: its wait failed with err. It reports whether the
// loop ends (no connection is registered, or the descriptor is broken).
func (p *poller) stop(err error) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if errors.Is(err, os.ErrDeadlineExceeded) && len(p.waiters) > 0 {
		p.stopping = false
		_ = p.file.SetReadDeadline(time.Time{})
		return false
	}
	p.running, p.stopping = false, false
	return true
}
