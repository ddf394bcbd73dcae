package engine

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/drawbridge-proxy/drawbridge/proxy/http1"
)

// How a response body is framed on the wire.
const (
	framePending = iota // not decided: the head is not written yet
	frameNone           // HEAD, 1xx, 204, 304
	frameLength         // Content-Length
	frameChunked        // chunked (HTTP/1.1, length unknown when the head went out)
	frameClose          // delimited by closing the connection (HTTP/1.0, length unknown)
)

// pendingLimit is how much body a response buffers before its head goes
// out: a handler that finishes within it gets a Content-Length instead of
// chunked framing, as with net/http.
const pendingLimit = 4 << 10

// response is the http.ResponseWriter of one request; the connection
// reuses it.
type response struct {
	c          *conn
	req        *http.Request
	header     http.Header
	status     int
	framing    int
	length     int64 // declared Content-Length, for frameLength
	written    int64 // body bytes written
	pending    []byte
	closeAfter bool // the connection ends after this response
	hijacked   bool
	trailers   []string // names announced in the Trailer header
	chunks     http1.ChunkedWriter
}

var errHijacked = errors.New("engine: connection hijacked")

func (w *response) reset(req *http.Request, closeAfter bool) {
	h := w.header
	if h == nil {
		h = make(http.Header)
	}
	clear(h)
	*w = response{c: w.c, req: req, header: h, closeAfter: closeAfter, pending: w.pending[:0], trailers: w.trailers[:0]}
}

// forget drops the last request and response for the exchange pool,
// keeping the cleared header map and the small pending buffer.
func (w *response) forget() {
	h := w.header
	clear(h)
	*w = response{header: h, pending: w.pending[:0], trailers: w.trailers[:0]}
	clear(w.trailers[:cap(w.trailers)])
}

func (w *response) Header() http.Header { return w.header }

func (w *response) WriteHeader(code int) {
	if w.hijacked || w.status != 0 {
		return
	}
	if code < 100 || code > 999 {
		code = http.StatusInternalServerError
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		w.interim(code)
		return
	}
	w.status = code
	if w.framingKnown() {
		w.commit(false)
	}
}

// interim writes a 1xx response (100 Continue, 103 Early Hints) at once.
func (w *response) interim(code int) {
	bw := w.c.bw
	writeStatusLine(bw, code)
	if code == http.StatusEarlyHints {
		writeFields(bw, w.header)
	}
	_, _ = bw.WriteString("\r\n")
	_ = bw.Flush()
}

// framingKnown reports whether the body's framing can be decided now,
// without waiting to see how much the handler writes.
func (w *response) framingKnown() bool {
	if !http1.BodyAllowed(w.req.Method, w.status) {
		return true
	}
	_, ok := w.header["Content-Length"]
	return ok
}

func (w *response) Write(p []byte) (int, error) {
	if w.hijacked {
		return 0, errHijacked
	}
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	switch w.framing {
	case framePending:
		if len(w.pending)+len(p) <= pendingLimit {
			w.pending = append(w.pending, p...)
			return len(p), nil
		}
		w.commit(false)
	case frameNone:
		if w.req.Method == http.MethodHead {
			return len(p), nil
		}
		return 0, http.ErrBodyNotAllowed
	}
	return w.writeBody(p)
}

func (w *response) writeBody(p []byte) (int, error) {
	var n int
	var err error
	switch w.framing {
	case frameLength:
		if w.written+int64(len(p)) > w.length {
			p = p[:w.length-w.written]
			err = http.ErrContentLength
		}
		var werr error
		n, werr = w.c.bw.Write(p)
		if werr != nil {
			err = werr
		}
	case frameChunked:
		n, err = w.chunks.Write(p)
	default:
		n, err = w.c.bw.Write(p)
	}
	w.written += int64(n)
	if err != nil && !errors.Is(err, http.ErrContentLength) {
		w.closeAfter = true
	}
	return n, err
}

// commit decides the framing and writes the head (into the buffer; it
// goes out with the body or at the next flush). final: the handler has
// returned, so a pending body's length is known.
func (w *response) commit(final bool) {
	if w.framing != framePending {
		return
	}
	h := w.header
	var extra string
	switch cl, hasCL := h["Content-Length"]; {
	case !http1.BodyAllowed(w.req.Method, w.status):
		w.framing = frameNone
		if w.status < 200 || w.status == http.StatusNoContent {
			delete(h, "Content-Length")
		}
	case hasCL && validLength(cl):
		w.framing = frameLength
		w.length, _ = strconv.ParseInt(cl[0], 10, 64)
	case final:
		delete(h, "Content-Length")
		w.framing, w.length = frameLength, int64(len(w.pending))
		extra = "Content-Length: " + strconv.Itoa(len(w.pending)) + "\r\n"
	case w.req.ProtoMinor >= 1:
		delete(h, "Content-Length")
		w.framing, extra = frameChunked, "Transfer-Encoding: chunked\r\n"
		w.chunks.Reset(w.c.bw)
		w.announced()
	default:
		delete(h, "Content-Length")
		w.framing, w.closeAfter = frameClose, true
	}
	if http1.HasToken(h["Connection"], "close") || w.c.srv.draining.Load() {
		w.closeAfter = true
	}
	w.writeHead(extra)
	if len(w.pending) > 0 {
		p := w.pending
		w.pending = w.pending[:0]
		_, _ = w.writeBody(p)
	}
}

func validLength(v []string) bool {
	if len(v) != 1 {
		return false
	}
	_, err := strconv.ParseUint(v[0], 10, 63)
	return err == nil && v[0] != "" && v[0][0] != '+'
}

// announced notes the trailer names of a chunked response.
func (w *response) announced() {
	for _, v := range w.header["Trailer"] {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				w.trailers = append(w.trailers, http.CanonicalHeaderKey(name))
			}
		}
	}
}

func (w *response) writeHead(extra string) {
	bw := w.c.bw
	writeStatusLine(bw, w.status)
	writeFields(bw, w.header)
	if _, ok := w.header["Date"]; !ok {
		_, _ = bw.WriteString("Date: ")
		_, _ = bw.Write(w.c.x.date.get(time.Now()))
		_, _ = bw.WriteString("\r\n")
	}
	_, _ = bw.WriteString(extra)
	if w.closeAfter && !http1.HasToken(w.header["Connection"], "close") {
		_, _ = bw.WriteString("Connection: close\r\n")
	}
	_, _ = bw.WriteString("\r\n")
}

// writeStatusLine writes the status line of code (100 to 999: three
// digits), a byte at a time: a digits buffer handed to bw.Write would
// escape to the heap.
func writeStatusLine(bw *bufio.Writer, code int) {
	_, _ = bw.WriteString("HTTP/1.1 ")
	const digits = "0123456789"
	_ = bw.WriteByte(digits[code/100%10])
	_ = bw.WriteByte(digits[code/10%10])
	_ = bw.WriteByte(digits[code%10])
	_ = bw.WriteByte(' ')
	_, _ = bw.WriteString(http.StatusText(code))
	_, _ = bw.WriteString("\r\n")
}

// writeFields writes a header map. Framing is the engine's own business
// (Transfer-Encoding is never copied); names that are not tokens are
// dropped and CR or LF in values become spaces, as net/http does, so a
// handler can never split the response.
func writeFields(bw *bufio.Writer, h http.Header) {
	for name, values := range h {
		if name == "Transfer-Encoding" || strings.HasPrefix(name, http.TrailerPrefix) || !http1.ValidName(name) {
			continue
		}
		for _, v := range values {
			_, _ = bw.WriteString(name)
			_, _ = bw.WriteString(": ")
			writeValue(bw, v)
			_, _ = bw.WriteString("\r\n")
		}
	}
}

func writeValue(bw *bufio.Writer, v string) {
	if !strings.ContainsAny(v, "\r\n\x00") {
		_, _ = bw.WriteString(strings.TrimSpace(v))
		return
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\r' || c == '\n' || c == 0 {
			c = ' '
		}
		_ = bw.WriteByte(c)
	}
}

// finish completes the response after the handler returned and reports
// whether the connection may carry another request.
func (w *response) finish() bool {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	w.commit(true)
	switch w.framing {
	case frameLength:
		if w.written < w.length {
			w.closeAfter = true // the client is waiting for bytes that never come
		}
	case frameChunked:
		for _, name := range w.trailers {
			for _, v := range w.header[name] {
				w.addTrailer(name, v)
			}
		}
		for name, vs := range w.header {
			if strings.HasPrefix(name, http.TrailerPrefix) {
				for _, v := range vs {
					w.addTrailer(http.CanonicalHeaderKey(name[len(http.TrailerPrefix):]), v)
				}
			}
		}
		if err := w.chunks.Close(); err != nil {
			w.closeAfter = true
		}
	}
	return !w.closeAfter
}

func (w *response) addTrailer(name, value string) {
	if http1.ValidName(name) && !strings.ContainsAny(value, "\r\n\x00") {
		w.chunks.AddTrailer(name, value)
	}
}

// Flush sends what is buffered: the head, if not yet sent, and the body
// so far.
func (w *response) Flush() { _ = w.FlushError() }

// FlushError is Flush for http.ResponseController.
func (w *response) FlushError() error {
	if w.hijacked {
		return errHijacked
	}
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	w.commit(false)
	return w.c.bw.Flush()
}

// Hijack hands the connection to the handler (protocol upgrades). What the
// client sent after the head is in the returned reader.
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.hijacked {
		return nil, nil, errHijacked
	}
	if w.framing != framePending {
		_ = w.c.bw.Flush()
	}
	w.hijacked = true
	_ = w.c.rwc.SetDeadline(time.Time{})
	return w.c.rwc, bufio.NewReadWriter(w.c.br, w.c.bw), nil
}

// SetReadDeadline is for http.ResponseController.
func (w *response) SetReadDeadline(t time.Time) error { return w.c.rwc.SetReadDeadline(t) }

// SetWriteDeadline is for http.ResponseController.
func (w *response) SetWriteDeadline(t time.Time) error { return w.c.rwc.SetWriteDeadline(t) }

// EnableFullDuplex is for http.ResponseController: the handler runs on the
// connection's goroutine, so reading the body after writing always works.
func (w *response) EnableFullDuplex() error { return nil }
