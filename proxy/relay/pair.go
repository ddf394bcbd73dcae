package relay

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Why a relayed connection ended, as logged.
const (
	closeClient      = "client_closed"
	closeUpstream    = "upstream_closed"
	closeClientErr   = "client_error"
	closeUpstreamErr = "upstream_error"
	closeIdle        = "idle_timeout"
	closeLifetime    = "max_lifetime"
	closeShutdown    = "shutdown"
)

// pair is one client connection joined to one upstream connection.
type pair struct {
	client, server net.Conn
	idle           time.Duration
	pg             *pgSession   // nil unless the listener speaks postgres: then a drain ends it between transactions
	lastActive     atomic.Int64 // unix nanoseconds of the last byte either way
	toServer       atomic.Int64 // bytes client -> upstream
	toClient       atomic.Int64 // bytes upstream -> client

	once   sync.Once
	reason string // the first reason the relay ended; written once
}

// finish records the first reason the connection ended; later ones lose.
func (r *pair) finish(reason string) {
	r.once.Do(func() { r.reason = reason })
}

func (r *pair) closeBoth(reason string) {
	r.finish(reason)
	r.client.Close()
	r.server.Close()
}

// run copies both ways until both ends finish. A half-close (EOF one way)
// is passed on with CloseWrite and the other direction keeps flowing, as
// TCP allows. The connection ends early on idleness (no byte either way
// for idle), on maxLife, or when stop ends.
func (r *pair) run(stop context.Context, maxLife time.Duration, bufs Buffers) {
	r.lastActive.Store(time.Now().UnixNano())
	stopWatch := context.AfterFunc(stop, func() { r.closeBoth(closeShutdown) })
	defer stopWatch()
	if maxLife > 0 {
		t := time.AfterFunc(maxLife, func() { r.closeBoth(closeLifetime) })
		defer t.Stop()
	}
	var wg sync.WaitGroup
	wg.Go(func() { r.pipe(r.server, r.client, &r.toServer, closeClient, closeClientErr, bufs, r.fromClient) })
	wg.Go(func() { r.pipe(r.client, r.server, &r.toClient, closeUpstream, closeUpstreamErr, bufs, r.fromServer) })
	wg.Wait()
	r.client.Close()
	r.server.Close()
}

// drain asks a PostgreSQL relay to end at its next transaction boundary
// (now, if it is idle); other relays run on until they end or the grace is over.
func (r *pair) drain() {
	if r.pg != nil && r.pg.drain() {
		r.endPostgres()
	}
}

// fromClient and fromServer are the PostgreSQL hooks of the two pipes: the
// client's bytes are seen before they are written (false: drop them, the
// session was ended), the server's after (true: end the session now).
func (r *pair) fromClient(b []byte) (relayOn bool) {
	return r.pg == nil || r.pg.fromClient(b)
}

func (r *pair) fromServer(b []byte) (relayOn bool) {
	if r.pg != nil && r.pg.fromServer(b) {
		r.endPostgres()
		return false
	}
	return true
}

// pipe copies src to dst. The read deadline is the idle timeout, extended
// while the other direction is active, so a long query result flowing one
// way does not time out the quiet other way. Before (the client's way) or
// after (the server's) each write, seen is told of the bytes; false ends
// the pipe.
func (r *pair) pipe(dst, src net.Conn, counter *atomic.Int64, eofReason, errReason string, bufs Buffers, seen func([]byte) bool) {
	before := dst == r.server
	buf := bufs.Get()
	defer bufs.Put(buf)
	// Deadlines are pushed forward only when half the idle time has gone
	// by, not on every read and write: a chatty database session would
	// otherwise spend its time re-arming timers.
	var readBy, writeBy time.Time
	for {
		now := time.Now()
		if readBy.Sub(now) < r.idle/2 {
			readBy = now.Add(r.idle)
			_ = src.SetReadDeadline(readBy)
		}
		n, err := src.Read(buf)
		if n > 0 {
			now = time.Now()
			r.lastActive.Store(now.UnixNano())
			if before && !seen(buf[:n]) {
				return // the drain ended the session: these bytes never reach the server
			}
			if writeBy.Sub(now) < r.idle/2 {
				writeBy = now.Add(r.idle)
				_ = dst.SetWriteDeadline(writeBy)
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				r.closeBoth(errReason)
				return
			}
			counter.Add(int64(n))
			if !before && !seen(buf[:n]) {
				return
			}
		}
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded):
			if time.Since(time.Unix(0, r.lastActive.Load())) < r.idle {
				readBy = time.Time{} // the other way is busy: wait again
				continue
			}
			r.closeBoth(closeIdle)
			return
		case errors.Is(err, io.EOF):
			r.finish(eofReason)
			closeWrite(dst)
			return
		default:
			r.closeBoth(errReason)
			return
		}
	}
}

// closeWrite half-closes c when it can (TCP, TLS), else closes it.
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		if cw.CloseWrite() == nil {
			return
		}
	}
	c.Close()
}
