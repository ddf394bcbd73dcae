package engine

import (
	"errors"
	"io"
	"net/http"
	"net/textproto"

	"github.com/drawbridge-proxy/drawbridge/proxy/http1"
)

// maxDrain is how much of a body the handler left unread is read and
// thrown away to keep the connection; past it the connection closes.
const maxDrain = 256 << 10

// body is the request body: framed by Content-Length or chunked, with
// 100 Continue sent on the first read when the client asked for it.
type body struct {
	c       *conn
	req     *http.Request
	length  http1.LengthReader
	chunked http1.ChunkedReader
	isChunk bool
	has     bool
	expect  bool // 100-continue still to be sent
	closed  bool
	read    bool // the handler read at least once
	err     error
}

func (b *body) reset(h *http1.Request, req *http.Request) {
	onTrailer := b.chunked.OnTrailer // bound once per connection
	*b = body{c: b.c, req: req, has: h.HasBody(), isChunk: h.Chunked, expect: h.Expect100 && h.HasBody()}
	b.chunked.OnTrailer = onTrailer
	switch {
	case h.Chunked:
		b.chunked.Reset(b.c.br)
		if len(req.Header["Trailer"]) > 0 {
			req.Trailer = http.Header{}
		}
	case h.ContentLength > 0:
		b.length.Reset(b.c.br, h.ContentLength)
	}
}

// forget drops the request and the reader, keeping what is bound once.
func (b *body) forget() {
	onTrailer := b.chunked.OnTrailer
	*b = body{c: b.c}
	b.chunked.OnTrailer = onTrailer
}

func (b *body) onTrailer(f http1.Field) {
	if b.req.Trailer == nil {
		return // trailers that were not announced are dropped (RFC 9110 6.5.1)
	}
	name := textproto.CanonicalMIMEHeaderKey(string(f.Name))
	if _, announced := b.req.Trailer[name]; announced || len(b.req.Header["Trailer"]) > 0 {
		b.req.Trailer[name] = append(b.req.Trailer[name], string(f.Value))
	}
}

var errBodyClosed = errors.New("engine: read on a closed request body")

func (b *body) Read(p []byte) (int, error) {
	switch {
	case b.closed:
		return 0, errBodyClosed
	case b.err != nil:
		return 0, b.err
	case !b.has:
		return 0, io.EOF
	}
	b.read = true
	if b.expect {
		b.expect = false
		if b.c.x.res.framing == framePending && b.c.x.res.status == 0 {
			_, _ = b.c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
			if err := b.c.bw.Flush(); err != nil {
				b.err = err
				return 0, err
			}
		}
	}
	var n int
	var err error
	if b.isChunk {
		n, err = b.chunked.Read(p)
	} else {
		n, err = b.length.Read(p)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		b.err = err // a broken body breaks the connection's framing
	}
	return n, err
}

func (b *body) Close() error {
	b.closed = true
	return nil
}

// done reports whether the whole body was read.
func (b *body) done() bool {
	if !b.has {
		return true
	}
	if b.isChunk {
		return b.chunked.Done()
	}
	return b.length.Done()
}

// finish reads what the handler left of the body, up to maxDrain, and
// reports whether the connection can go on.
func (b *body) finish() bool {
	if b.done() {
		return true
	}
	if b.err != nil || b.expect && !b.read {
		// A client waiting for 100 Continue may or may not send the body.
		return false
	}
	b.closed = false
	_, err := io.CopyN(io.Discard, b, maxDrain)
	return (err == nil || errors.Is(err, io.EOF)) && b.done()
}
