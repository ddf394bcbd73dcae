package engine

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/drawbridge-proxy/drawbridge/proxy/http1"
	"github.com/drawbridge-proxy/drawbridge/proxy/netpoll"
)

// conn is one client connection and the state its requests reuse.
type conn struct {
	srv    *Server
	rwc    net.Conn
	remote string
	tls    *tls.ConnectionState
	idle   atomic.Bool // waiting for a request with nothing buffered: Shutdown may close it

	br   *bufio.Reader // nil while idle: idle connections hold no buffer
	bw   *bufio.Writer // nil between responses
	head http1.Request
	body body
	res  response
	lim  http1.Limits
	tmpl http.Request // copied per request by WithContext
	date dateCache

	hijacked bool
	refused  bool // a request was refused or its body left unread: linger before closing
}

// bufferPools are shared by every Server of a size, so an idle connection
// holds no buffer at all.
var (
	writers sync.Pool // *bufio.Writer of writeBufferSize
	readers sync.Map  // size -> *sync.Pool of *bufio.Reader
)

const writeBufferSize = 8 << 10

func newConn(s *Server, c net.Conn) *conn {
	cn := &conn{srv: s, rwc: c, remote: c.RemoteAddr().String()}
	cn.lim = http1.Limits{MaxHead: s.cfg.MaxHeaderBytes}
	if tc, ok := c.(*tls.Conn); ok {
		st := tc.ConnectionState()
		cn.tls = &st
	}
	cn.res.c = cn
	cn.body.c = cn
	cn.body.chunked.OnTrailer = cn.body.onTrailer
	return cn
}

// getReader lends a read buffer of size bytes reading from c.
func getReader(size int, c net.Conn) *bufio.Reader {
	p, ok := readers.Load(size)
	if !ok {
		p, _ = readers.LoadOrStore(size, &sync.Pool{})
	}
	if br, ok := p.(*sync.Pool).Get().(*bufio.Reader); ok { //nolint:errcheck // the pool holds only *sync.Pool
		br.Reset(c)
		return br
	}
	return bufio.NewReaderSize(c, size)
}

func putReader(size int, br *bufio.Reader) {
	br.Reset(nil)
	if p, ok := readers.Load(size); ok {
		p.(*sync.Pool).Put(br) //nolint:errcheck // the pool holds only *sync.Pool
	}
}

// readSize holds a whole head and a little more, so the head is parsed in
// the buffer it was read into.
func (c *conn) readSize() int { return c.srv.cfg.MaxHeaderBytes + 4096 }

func (c *conn) serve() {
	defer c.close()
	for n := 0; n < c.srv.cfg.MaxRequestsPerConn; n++ {
		if !c.await(n == 0) || !c.serveRequest(n+1 == c.srv.cfg.MaxRequestsPerConn) {
			return
		}
	}
}

func (c *conn) close() {
	if c.hijacked {
		return
	}
	c.flush()
	if c.refused {
		c.linger()
	}
	_ = c.rwc.Close()
	c.releaseReader()
}

// linger half-closes after a refusal and reads what the client still
// sends for a moment, so the kernel does not answer unread bytes with a
// reset that would destroy the refusal before the client reads it.
func (c *conn) linger() {
	cw, ok := c.rwc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	_ = c.rwc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	_, _ = io.CopyN(io.Discard, c.rwc, 256<<10)
}

// hotWait is how long an idle connection waits for its next request with
// a read buffer: a busy client's next request comes sooner, and costs one
// read. Past it the buffer goes back to the pool and the wait goes on
// without one (proxy/netpoll), so idle connections hold no buffer.
const hotWait = time.Second

// await waits for the next request unless one is already buffered
// (pipelining).
func (c *conn) await(first bool) bool {
	if c.br != nil && c.br.Buffered() > 0 {
		return !c.srv.draining.Load()
	}
	wait := c.srv.cfg.IdleTimeout
	if first {
		wait = c.srv.cfg.ReadHeaderTimeout
	}
	deadline := time.Now().Add(wait)
	c.idle.Store(true)
	defer c.idle.Store(false)
	if c.srv.draining.Load() {
		return false
	}
	if c.br == nil {
		c.br = getReader(c.readSize(), c.rwc)
	}
	hot := deadline
	if c.tls == nil && wait > hotWait {
		hot = time.Now().Add(hotWait)
	}
	_ = c.rwc.SetReadDeadline(hot)
	_, err := c.br.Peek(1)
	if err == nil || hot.Equal(deadline) || !isTimeout(err) {
		return err == nil
	}
	c.releaseReader()
	_ = c.rwc.SetReadDeadline(deadline)
	if ok, err := netpoll.WaitReadable(c.rwc); ok && err != nil {
		return false
	}
	c.br = getReader(c.readSize(), c.rwc)
	_, err = c.br.Peek(1)
	return err == nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (c *conn) releaseReader() {
	if c.br != nil && !c.hijacked {
		putReader(c.readSize(), c.br)
	}
	c.br = nil
}

// serveRequest reads, serves and finishes one request; false ends the
// connection.
func (c *conn) serveRequest(last bool) bool {
	start := time.Now()
	_ = c.rwc.SetReadDeadline(start.Add(c.srv.cfg.ReadHeaderTimeout))
	n, err := c.readHead()
	if err != nil {
		var perr *http1.Error
		if errors.As(err, &perr) {
			c.refuse(perr.Status, perr.Reason)
		}
		return false
	}
	_ = c.rwc.SetReadDeadline(start.Add(c.srv.cfg.ReadTimeout))
	_ = c.rwc.SetWriteDeadline(time.Now().Add(c.srv.cfg.WriteTimeout))
	head, _ := c.br.Peek(n)
	req, err := c.newRequest(head)
	_, _ = c.br.Discard(n)
	if err != nil {
		c.refuse(http.StatusBadRequest, "unparseable request target")
		return false
	}
	if c.bw == nil {
		c.bw = getWriter(c.rwc)
	}
	ctx, cancel := context.WithCancel(c.srv.cfg.BaseContext)
	req = req.WithContext(ctx)
	c.res.reset(req, c.head.Close || last || c.srv.draining.Load())
	c.body.reset(&c.head, req)
	c.srv.cfg.Handler.ServeHTTP(&c.res, req)
	cancel()
	if c.res.hijacked {
		c.hijacked = true
		return false
	}
	keep := c.res.finish() && c.body.finish()
	if !keep && !c.body.done() {
		// Body bytes are still coming: a plain close would answer them
		// with a reset that can destroy the response (a 400 or 413).
		c.refused = true
	}
	if !keep || c.br.Buffered() == 0 {
		c.flush()
	}
	return keep && !c.srv.draining.Load()
}

// readHead reads until the buffer holds a whole head, then parses it once.
// Scanning for the blank line first keeps a head that trickles in byte by
// byte from being parsed again for every byte.
func (c *conn) readHead() (int, error) {
	scanned := 0
	for {
		buf, _ := c.br.Peek(c.br.Buffered())
		if i := http1.HeadEnd(buf, scanned); i >= 0 || len(buf) > c.lim.MaxHead || firstLineTooLong(buf) {
			return http1.ParseRequest(buf, &c.head, c.lim)
		}
		scanned = max(0, len(buf)-3)
		if _, err := c.br.Peek(len(buf) + 1); err != nil {
			if len(buf) > 0 && errors.Is(err, bufio.ErrBufferFull) {
				return http1.ParseRequest(buf, &c.head, c.lim)
			}
			return 0, err
		}
	}
}

// maxRequestLine mirrors http1's default request line limit, so a request
// line without an end is refused (414) without waiting for a whole head.
const maxRequestLine = 8 << 10

func firstLineTooLong(buf []byte) bool {
	return len(buf) > maxRequestLine && bytes.IndexByte(buf[:maxRequestLine], '\n') < 0
}

var chunkedTE = []string{"chunked"}

// newRequest builds the request the handler sees. Every string in it is
// cut from one copy of the head, so the head costs one allocation however
// many fields it has.
func (c *conn) newRequest(head []byte) (*http.Request, error) {
	h := &c.head
	s := string(head)
	str := func(b []byte) string {
		if len(b) == 0 {
			return ""
		}
		off := cap(head) - cap(b)
		return s[off : off+len(b)]
	}
	target := str(h.Target)
	u, err := parseTarget(h, target, str(h.Path))
	if err != nil {
		return nil, err
	}
	r := &c.tmpl
	*r = http.Request{
		Method: str(h.Method), URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: h.Minor,
		Host: str(h.Host), RemoteAddr: c.remote, RequestURI: target, TLS: c.tls, Close: h.Close,
		Header: make(http.Header, len(h.Fields)), Body: http.NoBody,
	}
	if h.Minor == 0 {
		r.Proto = "HTTP/1.0"
	}
	values := make([]string, len(h.Fields))
	for i, f := range h.Fields {
		name := textproto.CanonicalMIMEHeaderKey(str(f.Name))
		if name == "Host" || name == "Transfer-Encoding" {
			continue // in Host and TransferEncoding, as net/http has them
		}
		values[i] = str(f.Value)
		if prior, ok := r.Header[name]; ok {
			r.Header[name] = append(prior, values[i])
			continue
		}
		r.Header[name] = values[i : i+1 : i+1]
	}
	switch {
	case h.Chunked:
		r.ContentLength, r.TransferEncoding, r.Body = -1, chunkedTE, &c.body
	case h.ContentLength > 0:
		r.ContentLength, r.Body = h.ContentLength, &c.body
	}
	return r, nil
}

func parseTarget(h *http1.Request, target, path string) (*url.URL, error) {
	switch h.Form {
	case http1.FormAsterisk:
		return &url.URL{Path: "*"}, nil
	case http1.FormAuthority:
		return &url.URL{Host: target}, nil
	}
	return url.ParseRequestURI(target)
}

// refuse answers a request the strict profile refused and ends the
// connection: its framing is in doubt.
func (c *conn) refuse(status int, reason string) {
	c.refused = true
	if f := c.srv.cfg.OnRefuse; f != nil {
		f(c.remote, status, reason)
	}
	if c.bw == nil {
		c.bw = getWriter(c.rwc)
	}
	_ = c.rwc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	text := http.StatusText(status)
	var id, idField string
	if c.srv.cfg.RequestID != nil {
		rid := c.srv.cfg.RequestID()
		id, idField = "X-Request-Id: "+rid+"\r\n", `,"request_id":"`+rid+`"`
	}
	body := `{"error":"` + refusalText(status) + `"` + idField + "}\n"
	_, _ = c.bw.WriteString("HTTP/1.1 " + strconv.Itoa(status) + " " + text + "\r\n" +
		"Content-Type: application/json\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n" + id +
		"Connection: close\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	c.flush()
}

func refusalText(status int) string {
	switch status {
	case http.StatusRequestHeaderFieldsTooLarge:
		return "request headers too large"
	case http.StatusRequestURITooLong:
		return "request line too long"
	}
	return lowerASCII(http.StatusText(status))
}

func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func getWriter(c net.Conn) *bufio.Writer {
	if w, ok := writers.Get().(*bufio.Writer); ok {
		w.Reset(c)
		return w
	}
	return bufio.NewWriterSize(c, writeBufferSize)
}

// flush writes what is buffered and gives the writer back to the pool.
func (c *conn) flush() {
	if c.bw == nil || c.hijacked {
		return
	}
	_ = c.bw.Flush()
	c.bw.Reset(nil)
	writers.Put(c.bw)
	c.bw = nil
}

// dateCache formats the Date header once a second.
type dateCache struct {
	sec int64
	buf []byte
}

func (d *dateCache) get(now time.Time) []byte {
	if s := now.Unix(); s != d.sec || d.buf == nil {
		d.sec = s
		d.buf = now.UTC().AppendFormat(d.buf[:0], http.TimeFormat)
	}
	return d.buf
}
