package http1

import (
	"bytes"
	"errors"
)

// Target forms of RFC 9112 section 3.2.
const (
	FormOrigin    = iota // /path?query
	FormAbsolute         // http://authority/path?query
	FormAuthority        // host:port (CONNECT only)
	FormAsterisk         // * (OPTIONS only)
)

// Request is a parsed request head. Byte slices point into the buffer
// given to ParseRequest. Reset between uses keeps the Fields array.
type Request struct {
	Method []byte
	// Target is the request-target as sent; Path is it in origin form
	// (an absolute-form target reduced to its path and query).
	Target, Path []byte
	Form         int
	Minor        int // HTTP/1.Minor
	Fields       []Field
	// Host is the authority of an absolute-form or authority-form target
	// (a Host field must then agree with it), else the Host field.
	Host []byte
	// ContentLength is the body length; -1 when the request has none
	// given (no body, unless Chunked).
	ContentLength int64
	Chunked       bool
	// Close: the connection ends after this exchange (Connection: close,
	// or HTTP/1.0 without keep-alive).
	Close bool
	// Upgrade: Connection lists "upgrade".
	Upgrade bool
	// Expect100: Expect: 100-continue.
	Expect100 bool
}

// Reset empties r for reuse, keeping its Fields storage.
func (r *Request) Reset() {
	*r = Request{Fields: r.Fields[:0]}
}

// maxLeadingCRLF is how many empty lines before a request line are
// skipped (RFC 9112 section 2.2: at least one, for old clients that send
// CRLF after a POST body).
const maxLeadingCRLF = 4

// ParseRequest parses the request head at the start of buf into r and
// returns its length. ErrIncomplete asks for more bytes; any other error is
// an *Error whose Status the client gets before the connection is closed.
func ParseRequest(buf []byte, r *Request, lim Limits) (int, error) {
	lim = lim.withDefaults()
	r.Reset()
	off := 0
	for i := 0; i < maxLeadingCRLF && len(buf) >= off+2 && buf[off] == '\r' && buf[off+1] == '\n'; i++ {
		off += 2
	}
	line, next, err := nextLine(buf, off)
	if err != nil {
		if errors.Is(err, ErrIncomplete) && len(buf)-off > lim.MaxLine {
			return 0, errURITooLong
		}
		return 0, err
	}
	if next-off-2 > lim.MaxLine {
		return 0, errURITooLong
	}
	if err := r.requestLine(line); err != nil {
		return 0, err
	}
	r.Fields, off, err = parseFields(buf, next, r.Fields, lim)
	if err != nil {
		return 0, err
	}
	return off, r.semantics()
}

func (r *Request) requestLine(line []byte) error {
	if bytes.IndexByte(line, '\r') >= 0 {
		return errBareCR
	}
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return errRequestLine
	}
	rest := line[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 <= 0 {
		return errRequestLine
	}
	r.Method, r.Target = line[:sp1], rest[:sp2]
	if !isToken(r.Method) {
		return errMethod
	}
	minor, err := parseVersion(rest[sp2+1:])
	if err != nil {
		return err
	}
	r.Minor = minor
	if !validTarget(r.Target) {
		return errTarget
	}
	return r.targetForm()
}

// targetForm sorts the target into one of RFC 9112's four forms.
func (r *Request) targetForm() error {
	t := r.Target
	switch {
	case t[0] == '/':
		r.Form, r.Path = FormOrigin, t
	case string(r.Method) == "CONNECT":
		// RFC 9112 section 3.2.3: host and port, nothing else.
		if !validAuthority(t, true) {
			return errTarget
		}
		r.Form, r.Host = FormAuthority, t // checked against Host in semantics
	case len(t) == 1 && t[0] == '*':
		if string(r.Method) != "OPTIONS" {
			return errTarget
		}
		r.Form, r.Path = FormAsterisk, t
	default:
		return r.absoluteForm()
	}
	return nil
}

func (r *Request) absoluteForm() error {
	t := r.Target
	var rest []byte
	switch {
	case len(t) > 7 && equalFold(t[:7], "http://"):
		rest = t[7:]
	case len(t) > 8 && equalFold(t[:8], "https://"):
		rest = t[8:]
	default:
		return errTarget
	}
	end := bytes.IndexAny(rest, "/?")
	if end < 0 {
		end = len(rest)
	}
	authority := rest[:end]
	if !validAuthority(authority, false) {
		return errTarget
	}
	// An empty path means "/" (RFC 9112 section 3.2.2): Path is then ""
	// or starts with "?", and the caller puts the slash in front.
	r.Form, r.Path = FormAbsolute, rest[end:]
	r.Host = authority // checked against the Host field in semantics
	return nil
}

// semantics applies the rules that need every field: framing, Host and
// Expect.
func (r *Request) semantics() error {
	var f framing
	if err := f.frame(r.Fields); err != nil {
		return err
	}
	if f.teSeen && r.Minor == 0 {
		// RFC 9112 section 6.1: such framing is faulty; refuse it.
		return errTE10
	}
	r.ContentLength, r.Chunked, r.Upgrade = f.contentLength, f.chunked, f.upgrade
	r.Close = f.close || r.Minor == 0 && !f.keepAlive
	authority := r.Host
	r.Host = nil
	for _, fl := range r.Fields {
		switch {
		case equalFold(fl.Name, "host"):
			if r.Host != nil {
				return errHostRepeated
			}
			if !validAuthority(fl.Value, false) {
				return errHostInvalid
			}
			r.Host = fl.Value
		case equalFold(fl.Name, "expect"):
			if !equalFold(fl.Value, "100-continue") {
				return errExpect
			}
			r.Expect100 = r.Minor == 1 // HTTP/1.0 clients do not wait for 100
		}
	}
	switch {
	case r.Host == nil && r.Minor == 1:
		return errHostMissing
	case authority != nil && r.Host != nil && !EqualFold(authority, r.Host):
		return errHostMismatch
	case authority != nil:
		// RFC 9112 section 3.2.2: the target's authority is the one that
		// counts (as net/http has it), whatever the case of Host.
		r.Host = authority
	}
	return nil
}

// HasBody reports whether a body follows the head.
func (r *Request) HasBody() bool { return r.Chunked || r.ContentLength > 0 }
