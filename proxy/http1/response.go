package http1

import (
	"bytes"
	"errors"
)

// Response is a parsed response head. Byte slices point into the buffer
// given to ParseResponse.
type Response struct {
	Minor  int
	Status int
	Reason []byte
	Fields []Field
	// ContentLength is the body length; -1 when not given.
	ContentLength int64
	Chunked       bool
	// Close: the connection ends after this response (Connection: close,
	// HTTP/1.0 without keep-alive, or a body delimited by the close).
	Close bool
}

// Reset empties r for reuse, keeping its Fields storage.
func (r *Response) Reset() {
	*r = Response{Fields: r.Fields[:0]}
}

// ParseResponse parses the response head at the start of buf into r and
// returns its length. It is as strict as ParseRequest about framing: an
// upstream whose response two parsers could frame differently is a bad
// gateway, and its connection is not reused.
func ParseResponse(buf []byte, r *Response, lim Limits) (int, error) {
	lim = lim.withDefaults()
	r.Reset()
	line, next, err := nextLine(buf, 0)
	if err != nil {
		if errors.Is(err, ErrIncomplete) && len(buf) > lim.MaxHead {
			return 0, errHeadTooLarge
		}
		return 0, err
	}
	if err := r.statusLine(line); err != nil {
		return 0, err
	}
	r.Fields, next, err = parseFields(buf, next, r.Fields, lim)
	if err != nil {
		return 0, err
	}
	var f framing
	if err := f.frame(r.Fields); err != nil {
		return 0, err
	}
	if f.teSeen && r.Minor == 0 {
		return 0, errTE10
	}
	r.ContentLength, r.Chunked = f.contentLength, f.chunked
	// A body without a length runs to the close (RFC 9112 section 6.3,
	// item 8). Whether one follows at all depends on the request method
	// too: a HEAD response without a length closes here needlessly, which
	// is safe.
	delimitedByClose := !f.chunked && f.contentLength < 0 && BodyAllowed("", r.Status)
	r.Close = f.close || r.Minor == 0 && !f.keepAlive || delimitedByClose
	return next, nil
}

// statusLine reads "HTTP/1.x SP 3DIGIT [SP reason]". A missing reason (and
// its space) is common and unambiguous, so it is accepted.
func (r *Response) statusLine(line []byte) error {
	if bytes.IndexByte(line, '\r') >= 0 {
		return errBareCR
	}
	if len(line) < 12 || line[8] != ' ' {
		return errStatusLine
	}
	minor, err := parseVersion(line[:8])
	if err != nil {
		return errStatusLine
	}
	r.Minor = minor
	code := line[9:12]
	for _, c := range code {
		if c < '0' || c > '9' {
			return errStatusLine
		}
	}
	r.Status = int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0')
	if r.Status < 100 {
		return errStatusLine
	}
	rest := line[12:]
	if len(rest) > 0 {
		if rest[0] != ' ' || !validValue(rest[1:]) {
			return errStatusLine
		}
		r.Reason = rest[1:]
	}
	return nil
}

// BodyAllowed reports whether a response with this status to a request
// with this method can carry a body (RFC 9110 sections 6.4.1 and 15).
func BodyAllowed(method string, status int) bool {
	return method != "HEAD" && status >= 200 && status != 204 && status != 304
}
