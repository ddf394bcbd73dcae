package http1

import (
	"bytes"
	"errors"
)

// Field is one header field. Name and Value point into the parsed buffer:
// they are valid until that buffer is reused.
type Field struct {
	Name, Value []byte
}

// Limits bound a head. Zero fields take the defaults.
type Limits struct {
	// MaxHead bounds the whole head, start line included. Zero means 64 KiB.
	MaxHead int
	// MaxLine bounds the request line (414 past it). Zero means 8 KiB.
	MaxLine int
	// MaxFields bounds the number of header fields (431 past it). Zero means 128.
	MaxFields int
}

func (l Limits) withDefaults() Limits {
	if l.MaxHead <= 0 {
		l.MaxHead = 64 << 10
	}
	if l.MaxLine <= 0 {
		l.MaxLine = 8 << 10
	}
	if l.MaxFields <= 0 {
		l.MaxFields = 128
	}
	return l
}

// framing is what the fields common to requests and responses say about
// the body and the connection.
type framing struct {
	contentLength int64 // -1: none
	chunked       bool
	teSeen        bool
	close         bool // Connection: close
	keepAlive     bool // Connection: keep-alive
	upgrade       bool // Connection: upgrade
}

// nextLine returns the line at buf[off:] without its CRLF and the offset
// after it. It fails on a bare LF and reports ErrIncomplete when no LF is
// buffered yet.
func nextLine(buf []byte, off int) (line []byte, next int, err error) {
	i := bytes.IndexByte(buf[off:], '\n')
	if i < 0 {
		return nil, 0, ErrIncomplete
	}
	end := off + i
	if end == off || buf[end-1] != '\r' {
		return nil, 0, errBareLF
	}
	return buf[off : end-1], end + 1, nil
}

// parseFields reads header lines from buf[off:] up to the empty line and
// returns the offset after it. Each line is checked: no obs-fold, a token
// name, no whitespace before the colon, no control byte in the value.
func parseFields(buf []byte, off int, fields []Field, lim Limits) ([]Field, int, error) {
	for {
		if off > lim.MaxHead {
			return fields, 0, errHeadTooLarge
		}
		line, next, err := nextLine(buf, off)
		if err != nil {
			if errors.Is(err, ErrIncomplete) && len(buf) > lim.MaxHead {
				return fields, 0, errHeadTooLarge
			}
			return fields, 0, err
		}
		if next > lim.MaxHead {
			return fields, 0, errHeadTooLarge
		}
		off = next
		if len(line) == 0 {
			return fields, off, nil
		}
		f, err := parseField(line)
		if err != nil {
			return fields, 0, err
		}
		if len(fields) >= lim.MaxFields {
			return fields, 0, errTooManyFields
		}
		fields = append(fields, f)
	}
}

func parseField(line []byte) (Field, error) {
	if line[0] == ' ' || line[0] == '\t' {
		return Field{}, errObsFold
	}
	colon := bytes.IndexByte(line, ':')
	if colon < 0 {
		return Field{}, lineError(line, errNoColon)
	}
	name := line[:colon]
	if n := len(name); n > 0 && (name[n-1] == ' ' || name[n-1] == '\t') {
		return Field{}, errSpaceColon
	}
	if !isToken(name) {
		return Field{}, lineError(line, errHeaderName)
	}
	value := trimOWS(line[colon+1:])
	if !validValue(value) {
		return Field{}, lineError(line, errHeaderValue)
	}
	return Field{Name: name, Value: value}, nil
}

// lineError names a bare CR, the classic smuggling byte, when the line has
// one; else err. Only refused lines pay for the scan.
func lineError(line []byte, err error) error {
	if bytes.IndexByte(line, '\r') >= 0 {
		return errBareCR
	}
	return err
}

// frame reads the framing fields: Content-Length, Transfer-Encoding and
// Connection. Anything two parsers could read differently is refused.
func (f *framing) frame(fields []Field) error {
	f.contentLength = -1
	for _, fl := range fields {
		switch {
		case equalFold(fl.Name, "content-length"):
			if f.contentLength >= 0 {
				return errCLRepeated
			}
			n, ok := parseDigits(fl.Value)
			if !ok {
				return errCL
			}
			f.contentLength = n
		case equalFold(fl.Name, "transfer-encoding"):
			if f.teSeen {
				return errTERepeated
			}
			f.teSeen = true
			if err := transferCodings(fl.Value); err != nil {
				return err
			}
			f.chunked = true
		case equalFold(fl.Name, "trailer"):
			if namesFraming(fl.Value) {
				return errTrailerField
			}
		case equalFold(fl.Name, "connection"):
			f.connection(fl.Value)
		}
	}
	if f.teSeen && f.contentLength >= 0 {
		return errCLTE
	}
	return nil
}

// transferCodings accepts a Transfer-Encoding of exactly one "chunked".
// A malformed list, chunked twice, or chunked before another coding (the
// length is then undeterminable, RFC 9112 section 6.3) is a 400; a list of
// well-formed codings drawbridge does not implement ("gzip", "xchunked",
// "gzip, chunked") is a 501 (section 6.1). Both close the connection.
func transferCodings(v []byte) error {
	n, chunkedAt, unknown := 0, -1, false
	for {
		i := bytes.IndexByte(v, ',')
		elem := v
		if i >= 0 {
			elem = v[:i]
		}
		name := elem
		if j := bytes.IndexByte(name, ';'); j >= 0 {
			name = name[:j] // transfer-parameters: checked as tokens only
		}
		name = trimOWS(name)
		switch {
		case !isToken(name):
			return errTE
		case !equalFold(name, "chunked"):
			unknown = true
		case chunkedAt >= 0 || len(trimOWS(elem)) != len(name):
			return errTE // twice, or with parameters chunked does not have
		default:
			chunkedAt = n
		}
		n++
		if i < 0 {
			break
		}
		v = v[i+1:]
	}
	switch {
	case chunkedAt >= 0 && chunkedAt != n-1:
		return errTE
	case unknown:
		return errTEUnknown
	}
	return nil
}

// namesFraming reports whether a Trailer field announces a field that
// frames the message: those never belong in trailers (RFC 9110 section
// 6.5.1), and net/http refuses the message.
func namesFraming(v []byte) bool {
	for len(v) > 0 {
		var tok []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			tok, v = v[:i], v[i+1:]
		} else {
			tok, v = v, nil
		}
		if isFramingField(trimOWS(tok)) {
			return true
		}
	}
	return false
}

func isFramingField(name []byte) bool {
	return equalFold(name, "content-length") || equalFold(name, "transfer-encoding") || equalFold(name, "trailer")
}

// connection reads the tokens of a Connection field.
func (f *framing) connection(v []byte) {
	for len(v) > 0 {
		var tok []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			tok, v = v[:i], v[i+1:]
		} else {
			tok, v = v, nil
		}
		tok = trimOWS(tok)
		switch {
		case equalFold(tok, "close"):
			f.close = true
		case equalFold(tok, "keep-alive"):
			f.keepAlive = true
		case equalFold(tok, "upgrade"):
			f.upgrade = true
		}
	}
}

// parseVersion reads "HTTP/1.0" or "HTTP/1.1"; other well-formed versions
// are 505, anything else 400.
func parseVersion(v []byte) (minor int, err error) {
	if len(v) != 8 || string(v[:5]) != "HTTP/" || v[6] != '.' || v[5] < '0' || v[5] > '9' || v[7] < '0' || v[7] > '9' {
		return 0, errVersion
	}
	if v[5] != '1' || v[7] > '1' {
		return 0, errVersionNotSup
	}
	return int(v[7] - '0'), nil
}

// HeadEnd returns the index of the LF that starts the blank line ending a
// head in buf ("\n\r\n", or "\n\n" for the parser to refuse), searching
// from from, or -1. Readers call it on each new read before parsing, so a
// head that trickles in byte by byte is parsed once, not once per byte.
func HeadEnd(buf []byte, from int) int {
	for i := from; i < len(buf); i++ {
		if buf[i] != '\n' {
			continue
		}
		if i+1 < len(buf) && buf[i+1] == '\n' || i+2 < len(buf) && buf[i+1] == '\r' && buf[i+2] == '\n' {
			return i
		}
	}
	return -1
}
