package compress

import (
	"net/http"
	"strconv"
	"strings"
)

// state of a responseWriter.
type state int

const (
	undecided state = iota // no final status yet
	buffering              // a final status is held while a body of unknown length shows its size
	passing                // headers written as they are; the body goes through untouched
	encoding               // headers written with Content-Encoding; the body goes through the encoder
)

// responseWriter decides at the final status whether to compress, holding
// back a body of unknown length up to MinSize to learn whether it is worth it.
type responseWriter struct {
	http.ResponseWriter
	c     *Compressor
	req   *http.Request
	enc   string // the coding the client accepts; "" for none
	state state
	code  int
	buf   []byte
	e     encoder
	out   countingWriter
	in    int64
}

func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *responseWriter) WriteHeader(code int) {
	if w.state != undecided {
		return
	}
	if code < 200 { // 1xx: informational (103) or 101 Switching Protocols; pass as is
		if code == http.StatusSwitchingProtocols {
			w.state = passing
		}
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.code = code
	if !w.candidate(code) {
		w.pass()
		return
	}
	w.Header().Add("Vary", "Accept-Encoding")
	if w.enc == "" {
		w.pass()
		return
	}
	if n, err := strconv.ParseInt(w.Header().Get("Content-Length"), 10, 64); err == nil {
		if n < w.c.cfg.MinSize {
			w.pass()
		} else {
			w.startEncoding()
		}
		return
	}
	w.state = buffering
}

// candidate reports a response that would be compressed for a client
// accepting it: the same for every client, so it decides Vary as well.
func (w *responseWriter) candidate(code int) bool {
	h := w.Header()
	switch {
	case code == http.StatusNoContent || code == http.StatusNotModified || code == http.StatusPartialContent:
		return false
	case h.Get("Content-Encoding") != "" && !strings.EqualFold(h.Get("Content-Encoding"), "identity"):
		return false
	case h.Get("Content-Range") != "":
		return false
	case hasToken(h.Values("Cache-Control"), "no-transform"): // RFC 9111 section 5.2.2.6
		return false
	}
	return w.c.allowedType(h.Get("Content-Type"))
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.state == undecided {
		w.WriteHeader(http.StatusOK)
	}
	switch w.state {
	case buffering:
		w.buf = append(w.buf, p...)
		if int64(len(w.buf)) >= w.c.cfg.MinSize {
			w.startEncoding()
			if err := w.drain(); err != nil {
				return 0, err
			}
		}
		return len(p), nil
	case encoding:
		w.in += int64(len(p))
		return w.e.Write(p)
	}
	return w.ResponseWriter.Write(p)
}

// Flush sends what is held, then flushes the connection. A body of
// unknown length still below MinSize starts being encoded: a stream that
// flushes early is not waited for, and ReverseProxy flushes every write of
// a response without Content-Length, so passing it as it is would leave
// every chunked upstream response uncompressed.
func (w *responseWriter) Flush() { _ = w.FlushError() }

// FlushError is what http.ResponseController calls.
func (w *responseWriter) FlushError() error {
	switch w.state {
	case buffering:
		w.startEncoding()
		if err := w.drain(); err != nil {
			return err
		}
		fallthrough
	case encoding:
		if err := w.e.Flush(); err != nil {
			return err
		}
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// pass writes the held status with the headers as they are.
func (w *responseWriter) pass() {
	w.state = passing
	w.ResponseWriter.WriteHeader(w.code)
}

func (w *responseWriter) startEncoding() {
	h := w.Header()
	h.Del("Content-Length")
	h.Del("Accept-Ranges")
	h.Set("Content-Encoding", w.enc)
	// A strong validator names exact bytes, which are no longer these
	// (RFC 9110 section 8.8.1); a weak one still matches the resource.
	if et := h.Get("ETag"); et != "" && !strings.HasPrefix(et, "W/") {
		h.Set("ETag", "W/"+et)
	}
	w.state = encoding
	w.ResponseWriter.WriteHeader(w.code)
	w.out.w = w.ResponseWriter
	w.e = getEncoder(w.enc, &w.out)
}

// drain moves the held bytes into the encoder.
func (w *responseWriter) drain() error {
	buf := w.buf
	w.buf = nil
	w.in += int64(len(buf))
	_, err := w.e.Write(buf)
	return err
}

func (w *responseWriter) writeBuffered() error {
	buf := w.buf
	w.buf = nil
	_, err := w.ResponseWriter.Write(buf)
	return err
}

// finish ends the response when the handler returns: a small held body
// is sent as it is, with its length; an encoder is closed and pooled.
func (w *responseWriter) finish() {
	switch w.state {
	case buffering:
		w.Header().Set("Content-Length", strconv.Itoa(len(w.buf)))
		w.pass()
		_ = w.writeBuffered()
	case encoding:
		_ = w.e.Close()
		putEncoder(w.enc, w.e)
		w.e = nil
		if w.c.compressed != nil {
			w.c.compressed(w.req, w.enc, w.in, w.out.n)
		}
	}
}

// countingWriter counts the encoded bytes.
type countingWriter struct {
	w interface{ Write([]byte) (int, error) }
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// hasToken reports whether a comma-separated header holds token.
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			name, _, _ := strings.Cut(part, "=")
			if strings.EqualFold(strings.TrimSpace(name), token) {
				return true
			}
		}
	}
	return false
}
