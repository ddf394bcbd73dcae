package relay

import (
	"sync"
	"time"

	"github.com/drawbridge-proxy/drawbridge/proxy/pgwire"
)

// closeDrained: a draining listener ended a PostgreSQL session between
// transactions (Terminate to the server, 57P01 to the client).
const closeDrained = "drained"

// pgSession follows a relayed PostgreSQL session's message boundaries, so a
// drain can end it where the client loses nothing: right after the server's
// ReadyForQuery with status 'I' (no transaction open), when every query,
// Sync and function call the client sent has been answered and the client
// has sent nothing since. A pool then sees a connection the server ended
// while it was idle, as after a PostgreSQL shutdown, and opens another; a
// session cut in the middle of a transaction would instead fail whatever
// the client was doing.
//
// Bytes are relayed as they come; the framers only watch them. The client
// side is fed before its bytes are written, under mu, so "idle" can never be
// decided while a client's bytes are on their way to the server: bytes read
// after the decision are dropped (never sent), and the client is told the
// connection was terminated.
type pgSession struct {
	mu       sync.Mutex
	client   *pgwire.Framer // frontend -> backend
	server   *pgwire.Framer // backend -> frontend
	pending  int            // startup, queries, Syncs and calls sent and not yet answered by ReadyForQuery
	open     bool           // the client sent messages since its last sync point (an extended-protocol batch under way)
	status   byte           // the last ReadyForQuery's transaction status; 0 before the first
	draining bool
	ended    bool // the drain decided to end the session; nothing more is relayed
	lost     bool // the framing is lost (not PostgreSQL?): the drain falls back to waiting out the grace
}

// newPGSession follows a session whose startup packet is still to come from the client.
func newPGSession() *pgSession {
	return &pgSession{client: pgwire.NewFramer(true), server: pgwire.NewFramer(false)}
}

// idle: the session is between transactions with nothing in flight. Holds mu.
func (s *pgSession) idle() bool {
	return !s.lost && s.pending == 0 && !s.open && s.status == pgwire.TxIdle &&
		s.client.Between() && s.server.Between()
}

// fromClient sees bytes read from the client before they are written to the
// server; false means the session has been ended: drop them.
func (s *pgSession) fromClient(b []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return false
	}
	s.client.Feed(b, func(typ, _ byte) {
		switch typ {
		case 0, pgwire.MsgQuery, pgwire.MsgSync, pgwire.MsgFunctionCall:
			s.pending++
			s.open = false
		default:
			s.open = true
		}
	})
	s.lost = s.lost || s.client.Bad()
	return true
}

// fromServer sees bytes the server sent after they were written to the
// client; true means the drain should end the session now.
func (s *pgSession) fromServer(b []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.server.Feed(b, func(typ, first byte) {
		if typ == pgwire.MsgReadyForQuery {
			s.status = first
			if s.pending > 0 {
				s.pending--
			}
		}
	})
	s.lost = s.lost || s.server.Bad()
	return s.endIfIdle()
}

// drain marks the session draining; true means it is idle and should end now.
func (s *pgSession) drain() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.draining = true
	return s.endIfIdle()
}

// endIfIdle decides the end once, while draining and idle. Holds mu.
func (s *pgSession) endIfIdle() bool {
	if !s.draining || s.ended || !s.idle() {
		return false
	}
	s.ended = true
	return true
}

// endPostgres ends a drained session: Terminate to the server (it ends the
// backend cleanly, no "unexpected EOF" in its log), an ErrorResponse FATAL
// 57P01 to the client (what PostgreSQL's own shutdown sends: a pool reading
// it knows the connection is gone and nothing was lost), then both closed.
func (r *pair) endPostgres() {
	r.finish(closeDrained)
	_ = r.server.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = r.server.Write(pgwire.Terminate())
	_ = r.client.SetWriteDeadline(time.Now().Add(time.Second))
	_ = pgwire.WriteError(r.client, &pgwire.Error{Severity: "FATAL", Code: pgwire.AdminShutdown,
		Message: "terminating connection due to administrator command",
		Hint:    "drawbridge is shutting down and ended this idle session; connect again"})
	r.closeBoth(closeDrained)
}
