package transport

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/drawbridge-proxy/drawbridge/proxy/http1"
)

// ErrBadResponse wraps a response head the strict profile refused; the
// connection it came on is closed.
var ErrBadResponse = errors.New("transport: malformed response from upstream")

// errShortBody: the request body ended before its Content-Length.
var errShortBody = errors.New("transport: request body shorter than its Content-Length")

// past is a deadline that has passed: setting it wakes a blocked read or write.
var past = time.Unix(1, 0)

// pconn is one upstream connection.
type pconn struct {
	t         *Transport
	addr      string
	conn      net.Conn
	br        *bufio.Reader
	bw        *bufio.Writer
	tls       *tls.ConnectionState
	head      http1.Response
	lim       http1.Limits
	idleSince time.Time
	reused    bool
	scratch   []byte   // chunked request bodies are read into it
	ex        exchange // the round trip in progress; one at a time
	wake      func()   // the cancellation hook: ends a blocked read or write

	readDeadline bool // a response head's read deadline may still be set (clearHeadDeadline)

	// The response in progress, its body reader and its header map are the
	// connection's, rebuilt for each response: the connection goes back to
	// the pool only when the caller closes the body, after which it must
	// not use them (the header's value slices it may keep: they are not
	// reused).
	rb     respBody
	header http.Header
}

// respBody is a response and its body reader.
type respBody struct {
	resp http.Response
	body body
}

// maxKeptFields bounds the header map a connection keeps for its next
// response.
const maxKeptFields = 64

func (pc *pconn) scratchBuf() []byte {
	if pc.scratch == nil {
		pc.scratch = make([]byte, 16<<10)
	}
	return pc.scratch
}

func newPconn(t *Transport, addr string, c net.Conn) *pconn {
	pc := &pconn{t: t, addr: addr, lim: http1.Limits{MaxHead: t.cfg.MaxResponseHeaderBytes}}
	pc.br = bufio.NewReaderSize(nil, t.cfg.MaxResponseHeaderBytes+4096)
	pc.bw = bufio.NewWriterSize(nil, 16<<10)
	pc.setConn(c)
	pc.wake = func() { _ = pc.conn.SetDeadline(past) }
	pc.rb.body.chunked.OnTrailer = pc.rb.body.onTrailer // bound once
	return pc
}

func (pc *pconn) setConn(c net.Conn) {
	pc.conn = c
	pc.br.Reset(c)
	pc.bw.Reset(c)
}

// exchange is the state of one round trip on a pconn.
type exchange struct {
	pc       *pconn
	req      *http.Request
	ctx      context.Context
	hooks    CancelHooks // the context's, when it has them (watch)
	token    uint64      // of the wake hook in hooks
	stop     func() bool // stops the wake hook's AfterFunc, without hooks
	bodyRead bool        // some of the request body was consumed
	bodySent bool
}

// roundTrip runs one exchange. stale reports a failure that a fresh
// connection could avoid: a pooled connection that was already closed,
// found before any of the body was consumed.
func (pc *pconn) roundTrip(req *http.Request, trace *httptrace.ClientTrace) (*http.Response, bool, error) {
	ctx := req.Context()
	if err := ctx.Err(); err != nil {
		// Canceled between the pick and the write (an HTTP/2 stream reset
		// right after its HEADERS): send nothing; the connection is unused.
		pc.t.putIdle(pc)
		return nil, false, fmt.Errorf("transport: request not sent: %w", context.Cause(ctx))
	}
	ex := &pc.ex
	*ex = exchange{pc: pc, req: req, ctx: ctx}
	ex.watch()
	hasBody := req.Body != nil && req.Body != http.NoBody
	expect := hasBody && http1.HasToken(req.Header["Expect"], "100-continue")
	if err := writeHead(pc.bw, req, hasBody); err != nil {
		return ex.fail(err)
	}
	if hasBody && !expect {
		if err := ex.writeBody(); err != nil {
			return ex.fail(err)
		}
	}
	if err := pc.bw.Flush(); err != nil {
		return ex.fail(err)
	}
	if trace != nil && trace.WroteRequest != nil {
		trace.WroteRequest(httptrace.WroteRequestInfo{})
	}
	n, err := ex.readFinalHead(expect, trace)
	if err != nil {
		return ex.fail(err)
	}
	resp, err := ex.response(n)
	if err != nil {
		return ex.fail(err)
	}
	return resp, false, nil
}

// fail closes the connection and says whether a retry on a fresh one is
// safe.
func (ex *exchange) fail(err error) (*http.Response, bool, error) {
	ex.unwatch()
	pc := ex.pc
	_ = pc.conn.Close()
	stale := pc.reused && !ex.bodyRead && isStale(err)
	if ex.ctx.Err() != nil {
		err = fmt.Errorf("%w: %w", context.Cause(ex.ctx), err)
	}
	return nil, stale, err
}

// isStale reports the errors of writing to or reading from a connection
// the peer closed while it sat in the pool.
func isStale(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, http1.ErrTruncated)
}

// readFinalHead reads heads until a final one (or a 101): 100 Continue
// releases the body, other 1xx go to the trace or Config.Interim (a proxy
// forwards them to the client).
func (ex *exchange) readFinalHead(expect bool, trace *httptrace.ClientTrace) (int, error) {
	pc := ex.pc
	cfg := &pc.t.cfg
	wait := cfg.ResponseHeaderTimeout
	if expect {
		wait = cfg.ExpectContinueTimeout
	}
	for {
		switch {
		case wait > 0:
			ex.setReadDeadline(time.Now().Add(wait))
		case pc.readDeadline:
			ex.setReadDeadline(time.Time{}) // an earlier wait's, left for this read
		}
		n, err := pc.readHead()
		if err != nil && expect && !ex.bodySent && isTimeout(err) && ex.ctx.Err() == nil {
			// No 100 Continue in time: send the body anyway (RFC 9110 10.1.1).
			if err := ex.sendLateBody(); err != nil {
				return 0, err
			}
			wait = cfg.ResponseHeaderTimeout
			continue
		}
		if err != nil {
			return 0, err
		}
		status := pc.head.Status
		if status >= 200 || status == http.StatusSwitchingProtocols {
			return n, nil // response clears the deadline if the body needs reads
		}
		if status == http.StatusContinue && expect && !ex.bodySent {
			_, _ = pc.br.Discard(n)
			if err := ex.sendLateBody(); err != nil {
				return 0, err
			}
			wait = cfg.ResponseHeaderTimeout
			continue
		}
		ex.interim(n, trace)
	}
}

// setReadDeadline sets the connection's read deadline unless the
// request's context has ended, whose wake hook sets one in the past; and
// it looks again after, so that a wake that ran in between is not undone.
func (ex *exchange) setReadDeadline(t time.Time) {
	pc := ex.pc
	if ex.ctx.Err() != nil {
		return
	}
	_ = pc.conn.SetReadDeadline(t)
	pc.readDeadline = !t.IsZero()
	if ex.ctx.Err() != nil {
		_ = pc.conn.SetDeadline(past)
	}
}

// clearHeadDeadline lifts the response head's read deadline before the
// body is read from the connection. A body already whole in the buffer
// (or none) needs no read: the deadline stays, unseen, until the next
// exchange's wait replaces it, which saves a timer update per response.
func (ex *exchange) clearHeadDeadline(needsReads bool) {
	if ex.pc.readDeadline && needsReads {
		ex.setReadDeadline(time.Time{})
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (ex *exchange) sendLateBody() error {
	if err := ex.writeBody(); err != nil {
		return err
	}
	return ex.pc.bw.Flush()
}

// interim hands a 1xx head to the trace and drops it.
func (ex *exchange) interim(n int, trace *httptrace.ClientTrace) {
	pc := ex.pc
	switch {
	case trace != nil && trace.Got1xxResponse != nil:
		head, _ := pc.br.Peek(n)
		h := fieldsHeader(head, pc.head.Fields)
		_ = trace.Got1xxResponse(pc.head.Status, textproto.MIMEHeader(h))
	case pc.t.cfg.Interim != nil:
		head, _ := pc.br.Peek(n)
		pc.t.cfg.Interim(ex.req, pc.head.Status, fieldsHeader(head, pc.head.Fields))
	}
	_, _ = pc.br.Discard(n)
}

// readHead buffers a whole response head and parses it once.
func (pc *pconn) readHead() (int, error) {
	scanned := 0
	for {
		buf, _ := pc.br.Peek(pc.br.Buffered())
		if http1.HeadEnd(buf, scanned) >= 0 || len(buf) > pc.lim.MaxHead {
			n, err := http1.ParseResponse(buf, &pc.head, pc.lim)
			if err != nil {
				return 0, fmt.Errorf("%w: %w", ErrBadResponse, err)
			}
			return n, nil
		}
		scanned = max(0, len(buf)-3)
		if _, err := pc.br.Peek(len(buf) + 1); err != nil {
			if len(buf) == 0 && err == io.EOF {
				return 0, io.EOF
			}
			if errors.Is(err, bufio.ErrBufferFull) {
				return 0, fmt.Errorf("%w: head too large", ErrBadResponse)
			}
			if err == io.EOF {
				return 0, io.ErrUnexpectedEOF
			}
			return 0, err
		}
	}
}

// fieldsHeader copies parsed fields into a new header map; every string
// is cut from one copy of the head.
func fieldsHeader(head []byte, fields []http1.Field) http.Header {
	return fillHeader(make(http.Header, len(fields)), head, fields)
}

// fillHeader is fieldsHeader into h (empty).
func fillHeader(h http.Header, head []byte, fields []http1.Field) http.Header {
	s := string(head)
	str := func(b []byte) string {
		if len(b) == 0 {
			return ""
		}
		off := cap(head) - cap(b)
		return s[off : off+len(b)]
	}
	values := make([]string, len(fields))
	for i, f := range fields {
		name := textproto.CanonicalMIMEHeaderKey(str(f.Name))
		values[i] = str(f.Value)
		if prior, ok := h[name]; ok {
			h[name] = append(prior, values[i])
			continue
		}
		h[name] = values[i : i+1 : i+1]
	}
	return h
}

var chunkedTE = []string{"chunked"}

// response builds the *http.Response of the head at the start of the
// buffer and its body reader.
func (ex *exchange) response(n int) (*http.Response, error) {
	pc, req, h := ex.pc, ex.req, &ex.pc.head
	head, _ := pc.br.Peek(n)
	if pc.header == nil || len(pc.header) > maxKeptFields {
		pc.header = make(http.Header, len(h.Fields))
	}
	clear(pc.header)
	header := fillHeader(pc.header, head, h.Fields)
	rb := &pc.rb
	resp := &rb.resp
	*resp = http.Response{
		Status: statusLine(h.Status, h.Reason), StatusCode: h.Status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: h.Minor,
		Header: header, Request: req, TLS: pc.tls, ContentLength: h.ContentLength, Close: h.Close || req.Close,
	}
	if h.Minor == 0 {
		resp.Proto = "HTTP/1.0"
	}
	_, _ = pc.br.Discard(n)
	delete(header, "Transfer-Encoding")
	b := &rb.body
	b.reset(ex, resp)
	resp.Body = b
	ex.clearHeadDeadline(h.Status == http.StatusSwitchingProtocols || h.Chunked || h.ContentLength < 0 ||
		h.ContentLength > int64(pc.br.Buffered()) && http1.BodyAllowed(req.Method, h.Status))
	switch {
	case h.Status == http.StatusSwitchingProtocols:
		ex.unwatch()
		resp.Body, resp.ContentLength = &upgraded{pc: pc}, 0
		return resp, nil
	case !http1.BodyAllowed(req.Method, h.Status):
		if req.Method != http.MethodHead {
			resp.ContentLength = 0
		}
		b.end(true) // pooled at Close, like every kept connection
	case h.Chunked:
		resp.TransferEncoding, resp.ContentLength = chunkedTE, -1
		announceTrailers(resp)
		b.chunked.Reset(pc.br)
		b.r = &b.chunked
	case h.ContentLength >= 0:
		b.length.Reset(pc.br, h.ContentLength)
		b.r = &b.length
		if h.ContentLength == 0 {
			b.end(true)
		}
	default:
		resp.Close, b.r, b.untilClose = true, pc.br, true
	}
	return resp, nil
}

// statusLine is Response.Status: code and reason. The usual ones, with
// their standard reason, cost no allocation.
func statusLine(code int, reason []byte) string {
	text := http.StatusText(code)
	if len(reason) > 0 && string(reason) != text || text == "" {
		return strconv.Itoa(code) + " " + string(reason)
	}
	switch code {
	case http.StatusOK:
		return "200 OK"
	case http.StatusNoContent:
		return "204 No Content"
	case http.StatusNotModified:
		return "304 Not Modified"
	case http.StatusNotFound:
		return "404 Not Found"
	}
	return strconv.Itoa(code) + " " + text
}

// announceTrailers moves the Trailer field into resp.Trailer's keys, as
// net/http does, so a proxy announces and forwards them.
func announceTrailers(resp *http.Response) {
	vv, ok := resp.Header["Trailer"]
	if !ok {
		return
	}
	resp.Trailer = http.Header{}
	for _, v := range vv {
		for _, name := range strings.Split(v, ",") {
			if name = textproto.TrimString(name); name != "" {
				resp.Trailer[textproto.CanonicalMIMEHeaderKey(name)] = nil
			}
		}
	}
	delete(resp.Header, "Trailer")
}

// body reads a response body. Its end (EOF, an error, Close) decides
// whether the connection is kept: when the framing held and both sides
// keep it. Close then returns a kept connection to the pool.
type body struct {
	ex         *exchange
	resp       *http.Response
	r          io.Reader // length, chunked or the connection's reader
	length     http1.LengthReader
	chunked    http1.ChunkedReader
	untilClose bool
	done       bool // ended: Read returns io.EOF
	keep       bool // ended with the connection reusable
	closed     bool
}

// reset readies the connection's body reader for a new response, keeping
// the trailer hook bound once.
func (b *body) reset(ex *exchange, resp *http.Response) {
	onTrailer := b.chunked.OnTrailer
	*b = body{ex: ex, resp: resp}
	b.chunked.OnTrailer = onTrailer
}

func (b *body) onTrailer(f http1.Field) {
	if b.resp.Trailer == nil {
		b.resp.Trailer = http.Header{}
	}
	name := textproto.CanonicalMIMEHeaderKey(string(f.Name))
	b.resp.Trailer[name] = append(b.resp.Trailer[name], string(f.Value))
}

func (b *body) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.r.Read(p)
	switch {
	case errors.Is(err, io.EOF):
		b.end(!b.untilClose)
	case err != nil:
		b.end(false)
		if b.ex.ctx.Err() != nil {
			err = fmt.Errorf("%w: %w", context.Cause(b.ex.ctx), err)
		}
	}
	return n, err
}

// Close ends the body; a body not read to its end costs its connection.
// A kept connection goes back to the pool here, not at EOF: the response
// is the connection's and is rebuilt for its next one.
func (b *body) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	if !b.done {
		b.end(false)
	}
	if b.keep {
		b.ex.pc.t.putIdle(b.ex.pc)
	}
	return nil
}

// end stops the cancellation hook and decides the connection: kept (for
// Close to pool) when reuse is true and nothing says otherwise, else
// closed now.
func (b *body) end(reuse bool) {
	if b.done {
		return
	}
	b.done = true
	hookIdle := b.ex.unwatch() // false: the cancellation fired and set a deadline
	b.keep = reuse && hookIdle && !b.resp.Close && b.ex.bodyComplete()
	if !b.keep {
		_ = b.ex.pc.conn.Close()
	}
}

// bodyComplete: the request was sent whole (an expect-continue request
// answered early leaves the upstream unsure whether a body follows).
func (ex *exchange) bodyComplete() bool {
	hasBody := ex.req.Body != nil && ex.req.Body != http.NoBody
	return !hasBody || ex.bodySent
}

// upgraded is the connection after 101 Switching Protocols, as a proxy
// relays it: an io.ReadWriteCloser that can be half-closed.
type upgraded struct{ pc *pconn }

func (u *upgraded) Read(p []byte) (int, error) { return u.pc.br.Read(p) }

func (u *upgraded) Write(p []byte) (int, error) { return u.pc.conn.Write(p) }

func (u *upgraded) Close() error { return u.pc.conn.Close() }

// CloseWrite half-closes the connection (TCP or TLS): the upstream reads
// the end of the client's stream while its own goes on.
func (u *upgraded) CloseWrite() error {
	if cw, ok := u.pc.conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}
