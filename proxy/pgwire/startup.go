package pgwire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// Request codes of the untyped startup packets.
const (
	ProtocolVersion3  uint32 = 196608   // 3.0: a StartupMessage
	SSLRequestCode    uint32 = 80877103 // 1234.5679
	GSSENCRequestCode uint32 = 80877104 // 1234.5680
	CancelRequestCode uint32 = 80877102 // 1234.5678
)

// TLSRecordHandshake is the first byte of a TLS ClientHello: a client using
// PostgreSQL 17's direct TLS (sslnegotiation=direct) starts with it instead
// of a startup packet.
const TLSRecordHandshake = 0x16

// maxStartupLen bounds a startup packet; PostgreSQL itself allows 10000 bytes.
const maxStartupLen = 10000

// ErrBadStartup means the bytes are not a PostgreSQL startup packet.
var ErrBadStartup = errors.New("not a PostgreSQL startup packet")

// Startup is one untyped startup packet.
type Startup struct {
	Code uint32
	Raw  []byte // the whole packet, length included, to relay as is
}

// ReadStartup reads one startup packet: an int32 length that counts
// itself, then an int32 code, then the rest.
func ReadStartup(r io.Reader) (Startup, error) {
	var head [8]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return Startup{}, err
	}
	n := binary.BigEndian.Uint32(head[:4])
	if n < 8 || n > maxStartupLen {
		return Startup{}, fmt.Errorf("%w: length %d", ErrBadStartup, n)
	}
	raw := make([]byte, n)
	copy(raw, head[:])
	if _, err := io.ReadFull(r, raw[8:]); err != nil {
		return Startup{}, err
	}
	return Startup{Code: binary.BigEndian.Uint32(head[4:]), Raw: raw}, nil
}

// SSLRequest returns the 8-byte packet a client sends to ask for TLS.
func SSLRequest() []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint32(b[:4], 8)
	binary.BigEndian.PutUint32(b[4:], SSLRequestCode)
	return b
}

// StartupMessage builds a protocol 3.0 StartupMessage with the given
// parameters (user, database, ...), as a client would send.
func StartupMessage(params map[string]string, order ...string) []byte {
	body := binary.BigEndian.AppendUint32(nil, ProtocolVersion3)
	for _, k := range order {
		body = append(body, k...)
		body = append(body, 0)
		body = append(body, params[k]...)
		body = append(body, 0)
	}
	body = append(body, 0)
	return append(binary.BigEndian.AppendUint32(nil, uint32(min(len(body)+4, math.MaxUint32))), body...) //nolint:gosec // G115: clamped
}
