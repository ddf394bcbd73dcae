package pgwire

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
)

// SQLSTATE codes drawbridge answers with.
const (
	// InvalidAuthorizationSpecification is what PostgreSQL itself sends when
	// pg_hba.conf has no entry for a plaintext connection.
	InvalidAuthorizationSpecification = "28000"
	// ProtocolViolation answers bytes that are not a startup packet.
	ProtocolViolation = "08P01"
	// CannotConnectNow is sent when no database target is available.
	CannotConnectNow = "57P03"
)

// Error is a PostgreSQL ErrorResponse.
type Error struct {
	Severity string // FATAL, ERROR ...
	Code     string // SQLSTATE
	Message  string
	Hint     string
}

func (e *Error) Error() string { return fmt.Sprintf("%s %s: %s", e.Severity, e.Code, e.Message) }

// WriteError sends e as an ErrorResponse ('E' message): fields S, V, C, M
// and H, each a type byte and a NUL-terminated string, then a final NUL.
func WriteError(w io.Writer, e *Error) error {
	var body []byte
	field := func(typ byte, v string) {
		if v == "" {
			return
		}
		body = append(body, typ)
		body = append(body, v...)
		body = append(body, 0)
	}
	field('S', e.Severity)
	field('V', e.Severity)
	field('C', e.Code)
	field('M', e.Message)
	field('H', e.Hint)
	body = append(body, 0)
	if len(body) > maxStartupLen {
		return fmt.Errorf("error message of %d bytes is too long", len(body))
	}
	msg := append([]byte{'E'}, binary.BigEndian.AppendUint32(nil, uint32(len(body)+4))...) //nolint:gosec // G115: bounded just above
	_, err := w.Write(append(msg, body...))
	return err
}

// ReadError reads one backend message and returns it as an *Error if it is
// an ErrorResponse; tests and health checks use it to read a refusal.
func ReadError(r *bufio.Reader) (*Error, byte, error) {
	typ, err := r.ReadByte()
	if err != nil {
		return nil, 0, err
	}
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, typ, err
	}
	size := binary.BigEndian.Uint32(n[:])
	if size < 4 || size > 1<<20 {
		return nil, typ, fmt.Errorf("message length %d out of range", size)
	}
	body := make([]byte, size-4)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, typ, err
	}
	if typ != 'E' {
		return nil, typ, nil
	}
	e := &Error{}
	for len(body) > 1 {
		ft := body[0]
		end := 1
		for end < len(body) && body[end] != 0 {
			end++
		}
		v := string(body[1:end])
		switch ft {
		case 'S':
			e.Severity = v
		case 'C':
			e.Code = v
		case 'M':
			e.Message = v
		case 'H':
			e.Hint = v
		}
		if end >= len(body) {
			break
		}
		body = body[end+1:]
	}
	return e, typ, nil
}
