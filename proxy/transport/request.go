package transport

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/drawbridge-proxy/drawbridge/proxy/http1"
)

// errBadHeader: a request header that would split the message.
var errBadHeader = errors.New("transport: invalid request header")

// writeHead writes the request line and fields. Framing fields are the
// transport's own: Content-Length when the length is known, else chunked.
func writeHead(bw *bufio.Writer, req *http.Request, hasBody bool) error {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	if !validValue(host) || !validValue(req.Method) || strings.ContainsAny(req.Method, " \t") {
		return fmt.Errorf("%w: host or method", errBadHeader)
	}
	_, _ = bw.WriteString(req.Method)
	_ = bw.WriteByte(' ')
	_, _ = bw.WriteString(req.URL.RequestURI())
	_, _ = bw.WriteString(" HTTP/1.1\r\nHost: ")
	_, _ = bw.WriteString(host)
	_, _ = bw.WriteString("\r\n")
	for name, values := range req.Header {
		switch name {
		case "Host", "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		case "User-Agent":
			if len(values) == 1 && values[0] == "" {
				continue // a proxy's way of saying "send none", as with net/http
			}
		}
		if !http1.ValidName(name) {
			return fmt.Errorf("%w: name %q", errBadHeader, name)
		}
		for _, v := range values {
			if !validValue(v) {
				return fmt.Errorf("%w: value of %s", errBadHeader, name)
			}
			_, _ = bw.WriteString(name)
			_, _ = bw.WriteString(": ")
			_, _ = bw.WriteString(v)
			_, _ = bw.WriteString("\r\n")
		}
	}
	switch {
	case hasBody && req.ContentLength > 0:
		var num [20]byte
		_, _ = bw.WriteString("Content-Length: ")
		_, _ = bw.Write(strconv.AppendInt(num[:0], req.ContentLength, 10))
		_, _ = bw.WriteString("\r\n")
	case hasBody:
		_, _ = bw.WriteString("Transfer-Encoding: chunked\r\n")
		if len(req.Trailer) > 0 {
			_, _ = bw.WriteString("Trailer: ")
			first := true
			for name := range req.Trailer {
				if !first {
					_, _ = bw.WriteString(", ")
				}
				first = false
				_, _ = bw.WriteString(name)
			}
			_, _ = bw.WriteString("\r\n")
		}
	case req.Method == http.MethodPost || req.Method == http.MethodPut || req.Method == http.MethodPatch:
		_, _ = bw.WriteString("Content-Length: 0\r\n")
	}
	_, err := bw.WriteString("\r\n")
	return err
}

func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// writeBody copies the request body through the write buffer itself, so
// no copy buffer is allocated.
func (ex *exchange) writeBody() error {
	req, bw := ex.req, ex.pc.bw
	ex.bodyRead = true
	var w io.Writer = bw
	var cw *http1.ChunkedWriter
	if req.ContentLength <= 0 {
		cw = http1.NewChunkedWriter(bw)
		w = cw
	}
	var sent int64
	for {
		if bw.Available() < 512 {
			if err := bw.Flush(); err != nil {
				return err
			}
		}
		buf := bw.AvailableBuffer()
		buf = buf[:cap(buf)-16] // room for a chunk's size line
		if req.ContentLength > 0 && int64(len(buf)) > req.ContentLength-sent {
			buf = buf[:req.ContentLength-sent]
		}
		if cw != nil {
			// A chunk's size line goes before its data: read elsewhere.
			buf = ex.pc.scratchBuf()
		}
		n, rerr := req.Body.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return err
			}
			sent += int64(n)
		}
		if req.ContentLength > 0 && sent == req.ContentLength {
			break
		}
		if rerr == io.EOF {
			if req.ContentLength > 0 {
				return errShortBody
			}
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	if cw != nil {
		for name, vs := range req.Trailer {
			for _, v := range vs {
				if http1.ValidName(name) && validValue(v) {
					cw.AddTrailer(name, v)
				}
			}
		}
		if err := cw.Close(); err != nil {
			return err
		}
	}
	ex.bodySent = true
	return nil
}
