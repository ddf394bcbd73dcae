package netpoll

import (
	"net"
	"syscall"
)

// WaitReadable blocks until c has bytes to read (or an error, EOF
// included, to report), honouring c's read deadline. ok is false when c
// cannot be waited on this way (TLS, which may hold decrypted bytes the
// socket no longer shows; a wrapper without a socket): then the caller
// simply reads.
func WaitReadable(c net.Conn) (ok bool, err error) {
	sc, isSock := c.(syscall.Conn)
	if !isSock {
		return false, nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false, nil
	}
	first := true
	err = raw.Read(func(uintptr) bool {
		// The first call returns false to wait for readiness; the poller
		// returns at once when readiness was already signalled.
		if first {
			first = false
			return false
		}
		return true
	})
	return true, err
}
