// Package netpoll waits for a socket to become readable without reading
// from it, through Go's network poller.
//
// A proxy that reads as soon as it expects bytes pays a read that returns
// EAGAIN on every request, and one that blocks in a read holds a buffer
// for every idle connection. Waiting for readiness first, the way an event
// loop does, costs no system call when the bytes are already there and
// lets the buffer be taken only when they are.
//
// A Waiter goes further for connections that stay idle: it parks one with
// no goroutine waiting on it, in an epoll instance of its own (one-shot,
// level-triggered: bytes that came before the park fire at once), with its
// deadline in one shared heap, and calls back when bytes arrive or the
// deadline passes. Linux only; elsewhere Park reports ErrUnsupported.
package netpoll
