// Package netpoll waits for a socket to become readable without reading
// from it, through Go's network poller.
//
// A proxy that reads as soon as it expects bytes pays a read that returns
// EAGAIN on every request, and one that blocks in a read holds a buffer
// for every idle connection. Waiting for readiness first, the way an event
// loop does, costs no system call when the bytes are already there and
// lets the buffer be taken only when they are.
package netpoll
