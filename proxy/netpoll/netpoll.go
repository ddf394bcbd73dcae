package netpoll

import (
	"errors"
	"net"
	"syscall"
)

// WaitReadable blocks until c has bytes to read (or an error, EOF
// included, to report), honouring c's read deadline, without reading
// them: it peeks one byte. ok is false when c cannot be waited on this way
// (TLS, which may hold decrypted bytes the socket no longer shows; a
// wrapper without a socket): then the caller simply reads.
//
// Peeking costs a system call where a read into a buffer would not; it is
// for connections idle long enough that holding a buffer matters more.
// (A bare wait on the poller is not possible: RawConn.Read resets the
// readiness it recorded before calling back, so bytes that arrived just
// before would go unnoticed until more came.)
func WaitReadable(c net.Conn) (ok bool, err error) {
	sc, isSock := c.(syscall.Conn)
	if !isSock {
		return false, nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false, nil
	}
	var peekErr error
	err = raw.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, perr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		if errors.Is(perr, syscall.EAGAIN) || errors.Is(perr, syscall.EINTR) {
			return false
		}
		peekErr = perr
		return true
	})
	if err == nil {
		err = peekErr
	}
	return true, err
}
