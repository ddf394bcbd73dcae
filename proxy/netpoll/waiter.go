package netpoll

import (
	"container/heap"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ErrUnsupported is returned by Park for a connection that cannot be
// parked: no socket under it, or no poller on this system.
var ErrUnsupported = errors.New("netpoll: connection cannot be parked")

// A Waiter parks one idle connection with no goroutine waiting on it: the
// connection is registered with a shared epoll instance for one readiness
// event, and a deadline bounds the wait. When bytes arrive (or the peer
// closes), or the deadline passes, the Waiter's ready function runs once,
// on the poller's or a timer's goroutine, and must not block: typically it
// starts a goroutine to serve the connection again, or closes it.
//
// A parked connection belongs to whoever takes it first: the poller (ready
// with readable true), the deadline (ready with false), or a caller of
// Unpark (a shutdown). Exactly one of them wins; the others do nothing.
//
// The zero Waiter is ready to use; it is set up by its first Park. Close
// it when the connection closes. A Waiter must not be copied after its
// first Park.
type Waiter struct {
	p     *poller
	raw   syscall.RawConn
	ready func(readable bool)
	fd    int32
	gen   uint32
	// registered: the descriptor is in the epoll set (ADD done, MOD from
	// then on). Only the connection's owner touches it, in Park.
	registered bool
	closed     bool

	// state is the park's sequence number shifted left by one, with the
	// low bit set while parked: a deadline taken for one park cannot end
	// the next.
	state atomic.Uint64
	seq   uint64 // of the current park; written by the owner before parking

	// In the deadline heap, guarded by timeouts.mu.
	when int64 // monotonic nanoseconds (mono)
	pos  int   // 1 + its index in the heap; 0: not in it
	hseq uint64
}

// parkedBit is state's low bit.
const parkedBit = 1

var base = time.Now()

func mono() int64 { return int64(time.Since(base)) }

// Park hands c (the connection this Waiter is for, the same every time)
// to the poller until it is readable or deadline passes; ready is then
// called once, with readable true or false. Bytes that arrived before
// Park are seen at once. When Park returns nil the connection is no
// longer the caller's: it must not be touched until ready runs, or
// Unpark returns true. On an error it is still the caller's.
func (w *Waiter) Park(c net.Conn, deadline time.Time, ready func(readable bool)) error {
	if w.closed {
		return net.ErrClosed
	}
	if w.p == nil {
		if err := w.init(c); err != nil {
			return err
		}
	}
	w.ready = ready
	// Everything the next owner reads is written before the state says
	// parked: the poller may fire as soon as the descriptor is armed.
	add := !w.registered
	w.registered = true
	w.seq++
	seq := w.seq
	w.state.Store(seq<<1 | parkedBit)
	timeouts.add(w, seq, mono()+int64(time.Until(deadline)))
	var armErr error
	err := w.raw.Control(func(fd uintptr) { armErr = w.p.arm(w, int(fd), add) }) //nolint:gosec // a descriptor fits in int
	if err == nil {
		err = armErr
	}
	if err == nil {
		return nil
	}
	if w.claim() {
		timeouts.remove(w)
		w.registered = !add
		return err
	}
	return nil // the deadline or an Unpark took it meanwhile: theirs now
}

func (w *Waiter) init(c net.Conn) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return ErrUnsupported
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return ErrUnsupported
	}
	p, err := getPoller()
	if err != nil {
		return ErrUnsupported
	}
	fd := -1
	if err := raw.Control(func(f uintptr) { fd = int(f) }); err != nil { //nolint:gosec // a descriptor fits in int
		return err
	}
	w.p, w.raw, w.fd = p, raw, int32(fd) //nolint:gosec // a descriptor fits in int32
	p.add(w)
	return nil
}

// Unpark takes a parked connection back, before the poller or its
// deadline does. It reports whether it did: false when the connection
// was not parked (or another taker won).
func (w *Waiter) Unpark() bool {
	if !w.claim() {
		return false
	}
	timeouts.remove(w)
	return true
}

// Parked reports whether the connection is parked right now.
func (w *Waiter) Parked() bool { return w.state.Load()&parkedBit != 0 }

// Close forgets the connection: call it, with the connection owned (not
// parked), before or after closing it.
func (w *Waiter) Close() {
	w.closed = true
	if w.p != nil {
		w.p.remove(w)
	}
}

// claim takes the connection if it is parked, whichever park it is.
func (w *Waiter) claim() bool {
	for {
		s := w.state.Load()
		if s&parkedBit == 0 {
			return false
		}
		if w.state.CompareAndSwap(s, s&^parkedBit) {
			return true
		}
	}
}

// fire hands the connection to ready (bytes came) if nobody took it first.
func (w *Waiter) fire() {
	if !w.claim() {
		return
	}
	timeouts.remove(w)
	w.ready(true)
}

// expire ends park seq at its deadline, unless it already ended.
func (w *Waiter) expire(seq uint64) {
	if w.state.CompareAndSwap(seq<<1|parkedBit, seq<<1) {
		w.ready(false)
	}
}

// timeouts holds every parked connection's deadline, earliest first, with
// one timer for the earliest: a parked connection costs no timer of its
// own.
var timeouts = &deadlineHeap{}

type deadlineHeap struct {
	mu    sync.Mutex
	ws    []*Waiter
	timer *time.Timer
	next  int64 // what the timer is set for; 0: not set
}

func (d *deadlineHeap) add(w *Waiter, seq uint64, when int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if w.pos > 0 {
		heap.Remove(d, w.pos-1) // in from a park that ended without a remove: not expected
	}
	w.when, w.hseq = when, seq
	heap.Push(d, w)
	if d.next == 0 || when < d.next {
		d.arm(when)
	}
}

func (d *deadlineHeap) remove(w *Waiter) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if w.pos > 0 {
		heap.Remove(d, w.pos-1)
	}
	// The timer stays set: when it fires for nothing it sets itself for
	// the next deadline.
}

// arm sets the timer for when; under mu.
func (d *deadlineHeap) arm(when int64) {
	d.next = when
	wait := time.Duration(max(when-mono(), 0))
	if d.timer == nil {
		d.timer = time.AfterFunc(wait, d.expire)
		return
	}
	d.timer.Reset(wait)
}

type expired struct {
	w   *Waiter
	seq uint64
}

func (d *deadlineHeap) expire() {
	var due []expired
	d.mu.Lock()
	now := mono()
	for len(d.ws) > 0 && d.ws[0].when <= now {
		w := heap.Pop(d).(*Waiter) //nolint:errcheck,forcetypeassert // the heap holds only *Waiter
		due = append(due, expired{w, w.hseq})
	}
	d.next = 0
	if len(d.ws) > 0 {
		d.arm(d.ws[0].when)
	}
	d.mu.Unlock()
	for _, e := range due {
		e.w.expire(e.seq)
	}
}

// heap.Interface, under mu.
func (d *deadlineHeap) Len() int           { return len(d.ws) }
func (d *deadlineHeap) Less(i, j int) bool { return d.ws[i].when < d.ws[j].when }
func (d *deadlineHeap) Swap(i, j int) {
	d.ws[i], d.ws[j] = d.ws[j], d.ws[i]
	d.ws[i].pos, d.ws[j].pos = i+1, j+1
}

func (d *deadlineHeap) Push(x any) {
	w := x.(*Waiter) //nolint:errcheck,forcetypeassert // the heap holds only *Waiter
	d.ws = append(d.ws, w)
	w.pos = len(d.ws)
}

func (d *deadlineHeap) Pop() any {
	n := len(d.ws) - 1
	w := d.ws[n]
	d.ws[n] = nil
	d.ws = d.ws[:n]
	w.pos = 0
	if cap(d.ws) > 1024 && len(d.ws) < cap(d.ws)/4 {
		d.ws = append([]*Waiter(nil), d.ws...) // give back what a burst left
	}
	return w
}
