package proxy

import (
	"bytes"
	"crypto/tls"
	"net"
	"strconv"
	"sync"
)

// framingConn watches the bytes an HTTP/1 server reads from a connection and
// records, for each request head in order, whether its body framing was
// faulty: both Content-Length and Transfer-Encoding present (RFC 9112
// section 6.1: "ought to be handled as an error"; Go's server instead drops
// Content-Length before the handler can see it), Transfer-Encoding in an
// HTTP/1.0 request (6.1: MUST be treated as faulty framing, and the
// connection closed; Go ignores it and reads the body as the next
// request), or an obs-folded line (5.2: reject with 400; Go joins it, so
// a folded Transfer-Encoding hides from a parser that does not). The check
// has to happen on the wire; the handler pops one verdict per request.
type framingConn struct {
	net.Conn
	tls *tls.ConnectionState // of the TLS connection under Conn; nil on plain text

	mu       sync.Mutex // guards the following fields
	verdicts []bool
	scan     framingScanner
}

// framingListener wraps each plain HTTP/1 connection in a framingConn.
type framingListener struct {
	net.Listener
	maxHead int
}

func (l *framingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return newFramingConn(c, l.maxHead), nil
}

func newFramingConn(c net.Conn, maxHead int) *framingConn {
	return &framingConn{Conn: c, scan: framingScanner{maxLine: maxHead}}
}

func (c *framingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.mu.Lock()
		c.scan.feed(p[:n], &c.verdicts)
		c.mu.Unlock()
	}
	return n, err
}

// nextAmbiguous pops the verdict for the next request head.
func (c *framingConn) nextAmbiguous() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.verdicts) == 0 {
		return false
	}
	v := c.verdicts[0]
	c.verdicts = c.verdicts[1:]
	return v
}

// stop ends scanning, once the connection is no longer HTTP/1 (upgraded).
func (c *framingConn) stop() {
	c.mu.Lock()
	c.scan.state = scanOff
	c.verdicts = nil
	c.mu.Unlock()
}

type scanState int

const (
	scanHead      scanState = iota // reading the request line and headers
	scanBody                       // skipping a Content-Length body
	scanChunkSize                  // reading a chunk-size line
	scanChunkData                  // skipping chunk data and its CRLF
	scanTrailer                    // reading trailer lines after the last chunk
	scanOff                        // not HTTP/1 any more, or unparseable: Go's parser decides
)

type framingScanner struct {
	state     scanState
	maxLine   int
	line      []byte
	started   bool // the request line of the current head was seen
	http10    bool // the request line says HTTP/1.0
	folded    bool // a header line was obs-folded
	hasCL     bool
	hasTE     bool
	chunked   bool
	remaining int64
}

func (s *framingScanner) feed(b []byte, out *[]bool) {
	for len(b) > 0 && s.state != scanOff {
		switch s.state {
		case scanBody, scanChunkData:
			n := int64(len(b))
			if n > s.remaining {
				n = s.remaining
			}
			s.remaining -= n
			b = b[n:]
			if s.remaining == 0 {
				if s.state == scanBody {
					s.state = scanHead
				} else {
					s.state = scanChunkSize
				}
			}
		default:
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				s.appendLine(b)
				return
			}
			s.appendLine(b[:i])
			b = b[i+1:]
			if s.state != scanOff {
				s.endLine(out)
			}
		}
	}
}

func (s *framingScanner) appendLine(b []byte) {
	if len(s.line)+len(b) > s.maxLine {
		s.state = scanOff // Go answers 431 and closes; nothing more to watch
		s.line = nil
		return
	}
	s.line = append(s.line, b...)
}

func (s *framingScanner) endLine(out *[]bool) {
	line := bytes.TrimSuffix(s.line, []byte("\r"))
	s.line = s.line[:0]
	switch s.state {
	case scanHead:
		s.headLine(line, out)
	case scanChunkSize:
		size := line
		if i := bytes.IndexByte(size, ';'); i >= 0 {
			size = size[:i]
		}
		n, err := strconv.ParseInt(string(bytes.TrimSpace(size)), 16, 64)
		switch {
		case err != nil || n < 0:
			s.state = scanOff
		case n == 0:
			s.state = scanTrailer
		default:
			s.state, s.remaining = scanChunkData, n+2 // data, then CRLF
		}
	case scanTrailer:
		if len(line) == 0 {
			s.state = scanHead
		}
	}
}

func (s *framingScanner) headLine(line []byte, out *[]bool) {
	if !s.started {
		if len(line) > 0 { // RFC 9112 2.2: empty lines before a request line are ignored
			s.started = true
			s.http10 = bytes.HasSuffix(line, []byte(" HTTP/1.0"))
		}
		return
	}
	if len(line) > 0 {
		if line[0] == ' ' || line[0] == '\t' {
			s.folded = true
		}
		s.header(line)
		return
	}
	*out = append(*out, s.hasCL && s.hasTE || s.http10 && s.hasTE || s.folded)
	switch {
	case s.chunked && !s.http10:
		s.state = scanChunkSize
	case s.remaining > 0:
		s.state = scanBody
	}
	s.started, s.http10, s.folded, s.hasCL, s.hasTE, s.chunked = false, false, false, false, false, false
}

func (s *framingScanner) header(line []byte) {
	colon := bytes.IndexByte(line, ':')
	if colon < 0 {
		return
	}
	name, value := line[:colon], bytes.TrimSpace(line[colon+1:])
	switch {
	case bytes.EqualFold(name, []byte("Content-Length")):
		s.hasCL = true
		if n, err := strconv.ParseInt(string(value), 10, 64); err == nil && n > 0 && !s.chunked {
			s.remaining = n
		}
	case bytes.EqualFold(name, []byte("Transfer-Encoding")):
		s.hasTE = true
		if bytes.Contains(bytes.ToLower(value), []byte("chunked")) {
			s.chunked, s.remaining = true, 0
		}
	}
}
