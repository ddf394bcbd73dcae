package pgwire

import "encoding/binary"

// Message types a session's drain looks at (protocol 3.0).
const (
	MsgQuery         byte = 'Q' // frontend: simple query, answered by one ReadyForQuery
	MsgSync          byte = 'S' // frontend: ends an extended-protocol cycle, answered by one ReadyForQuery
	MsgFunctionCall  byte = 'F' // frontend: answered by one ReadyForQuery
	MsgTerminate     byte = 'X' // frontend: the client is leaving
	MsgReadyForQuery byte = 'Z' // backend: idle again; its one body byte is the transaction status
)

// Transaction status of a ReadyForQuery.
const (
	TxIdle   byte = 'I' // not in a transaction block: a session may end here losing nothing
	TxInTx   byte = 'T'
	TxFailed byte = 'E'
)

// AdminShutdown is PostgreSQL's SQLSTATE for "terminating connection due to
// administrator command", what a server sends to the sessions a shutdown
// ends; pools treat it as "this connection is gone, open another".
const AdminShutdown = "57P01"

// maxMessageLen bounds a message length a Framer accepts; PostgreSQL's own
// limit for a field is 1 GB.
const maxMessageLen = 1 << 30

// Terminate returns the frontend's Terminate message.
func Terminate() []byte { return []byte{MsgTerminate, 0, 0, 0, 4} }

// Framer follows message boundaries in one direction of a session from the
// bytes as they pass, in chunks of any size, without holding them: it keeps
// only the header of the message under way. Startup makes the first message
// an untyped startup packet (the frontend's first, after any SSLRequest).
type Framer struct {
	untyped bool    // the message under way has no type byte
	head    [5]byte // the header being read: type byte (if any) and length
	got     int     // bytes of head read
	left    int     // body bytes of the current message not yet seen
	typ     byte
	first   bool // the next body byte is the first (ReadyForQuery's status)
	byte1   byte // the first body byte of the message under way
	bad     bool
}

// NewFramer returns a Framer; startup is true for the frontend's direction
// when the startup packet is still to come.
func NewFramer(startup bool) *Framer { return &Framer{untyped: startup} }

// Bad reports that a length made no sense: the stream is not PostgreSQL
// (or the Framer lost its place), so nothing it says can be trusted.
func (f *Framer) Bad() bool { return f.bad }

// Between reports that the bytes seen end exactly at a message boundary.
func (f *Framer) Between() bool { return !f.bad && f.got == 0 && f.left == 0 }

// Feed passes b through the Framer; done is called for every message that
// completes in b with its type (0 for the startup packet) and the first
// byte of its body (0 when it has none).
func (f *Framer) Feed(b []byte, done func(typ, first byte)) {
	for len(b) > 0 && !f.bad {
		if f.left == 0 && f.got < f.headLen() {
			n := copy(f.head[f.got:f.headLen()], b)
			f.got += n
			b = b[n:]
			if f.got < f.headLen() {
				return
			}
			if !f.startMessage() {
				return
			}
			if f.left == 0 {
				f.complete(0, done)
			}
			continue
		}
		n := min(f.left, len(b))
		if f.first {
			f.byte1, f.first = b[0], false
		}
		f.left -= n
		b = b[n:]
		if f.left == 0 {
			f.complete(f.byte1, done)
		}
	}
}

func (f *Framer) headLen() int {
	if f.untyped {
		return 4
	}
	return 5
}

// startMessage reads the header just completed: false if its length is out of range.
func (f *Framer) startMessage() bool {
	var length uint32
	if f.untyped {
		f.typ = 0
		length = binary.BigEndian.Uint32(f.head[:4])
	} else {
		f.typ = f.head[0]
		length = binary.BigEndian.Uint32(f.head[1:5])
	}
	if length < 4 || length > maxMessageLen {
		f.bad = true
		return false
	}
	f.left = int(length) - 4
	f.first, f.byte1 = f.left > 0, 0
	return true
}

func (f *Framer) complete(first byte, done func(typ, first byte)) {
	typ := f.typ
	f.got, f.untyped, f.first = 0, false, false
	if done != nil {
		done(typ, first)
	}
}
