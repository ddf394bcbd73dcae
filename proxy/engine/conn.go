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
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/drawbridge-proxy/drawbridge/proxy/http1"
	"github.com/drawbridge-proxy/drawbridge/proxy/netpoll"
)

// conn is one client connection and the state its requests reuse.
//
// Between requests a connection first waits on its goroutine with a small
// read buffer (hotWait); past that it gives the buffer back, parks in
// proxy/netpoll and its goroutine ends: an idle keep-alive connection
// costs this struct and the socket, nothing more. When bytes arrive a new
// goroutine takes it up again (serve with resumed set).
type conn struct {
	srv    *Server
	rwc    net.Conn
	sock   net.Conn // the socket under rwc (under TLS too): what is parked
	remote string
	tls    *tls.ConnectionState
	idle   atomic.Bool // waiting for a request with nothing buffered: Shutdown may close it

	br  *bufio.Reader // nil while idle: idle connections hold no buffer
	src source        // what br reads from
	bw  *bufio.Writer // nil between responses
	x   *exchange     // nil while parked

	ctx *reqCtx // of the connection's requests (reqContext); nil while parked

	served   int       // requests served so far
	deadline time.Time // of the wait for the next request
	resumed  bool      // serve runs again after a park: the wait's deadline is set
	noPark   bool      // the connection cannot be parked: wait on the goroutine
	waiter   netpoll.Waiter
	onReady  func(readable bool) // c.ready, bound once

	hijacked bool
	refused  bool // a request was refused or its body left unread: linger before closing
}

// exchange is the state of a request and its response, lent to a
// connection from a pool while it has requests to serve. The request the
// handler sees, its URL, header map and the slab of the header's values
// are here too, rebuilt for each request: the handler runs on the
// connection's goroutine and must not keep them once it returns (Config.Handler).
type exchange struct {
	head   http1.Request
	body   body
	res    response
	req    http.Request
	url    url.URL
	header http.Header // req.Header: cleared and refilled
	values []string    // req.Header's values
	date   dateCache
}

// maxKeptFields bounds the header map and values slab an exchange keeps
// for the next request: a rare head with many fields does not leave a
// large map in the pool.
const maxKeptFields = 64

var exchanges sync.Pool // *exchange

func (c *conn) takeExchange() {
	x, ok := exchanges.Get().(*exchange)
	if !ok {
		x = &exchange{}
		x.body.chunked.OnTrailer = x.body.onTrailer // bound once per exchange
	}
	x.body.c, x.res.c = c, c
	c.x = x
}

// giveExchange clears the exchange of everything the last request left
// (no buffer, header or body stays reachable through it) and returns it.
func (c *conn) giveExchange() {
	x := c.x
	if x == nil {
		return
	}
	c.x = nil
	clear(x.head.Fields[:cap(x.head.Fields)])
	x.head = http1.Request{Fields: x.head.Fields[:0]}
	x.body.forget()
	x.res.forget()
	x.forgetRequest()
	exchanges.Put(x)
}

// forgetRequest drops the last request, keeping its header map and values
// slab (cleared) unless they grew large.
func (x *exchange) forgetRequest() {
	x.req, x.url = http.Request{}, url.URL{}
	clear(x.header)
	clear(x.values[:cap(x.values)])
	if len(x.values) > maxKeptFields {
		x.header, x.values = nil, nil
	}
	x.values = x.values[:0]
}

// source is what a connection's read buffer reads from: the connection,
// after bytes handed over from a smaller buffer (growReader).
type source struct {
	pre []byte
	c   net.Conn
}

func (s *source) Read(p []byte) (int, error) {
	if len(s.pre) > 0 {
		n := copy(p, s.pre)
		s.pre = s.pre[n:]
		return n, nil
	}
	return s.c.Read(p)
}

// bufferPools are shared by every Server of a size, so an idle connection
// holds no buffer at all.
var (
	writers sync.Pool // *bufio.Writer of writeBufferSize
	readers sync.Map  // size -> *sync.Pool of *bufio.Reader
)

const writeBufferSize = 8 << 10

// smallRead is the read buffer a connection starts each request with: most
// heads fit. A head that does not moves to a buffer of readSize.
const smallRead = 4 << 10

func newConn(s *Server, c net.Conn) *conn {
	cn := &conn{srv: s, rwc: c, sock: c, remote: c.RemoteAddr().String()}
	cn.src.c = c
	if tc, ok := c.(*tls.Conn); ok {
		st := tc.ConnectionState()
		cn.tls = &st
		cn.sock = tc.NetConn()
	}
	cn.onReady = cn.ready
	return cn
}

// getReader lends a read buffer of size bytes reading from c.
func getReader(size int, c io.Reader) *bufio.Reader {
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

// serve serves requests until the connection ends or parks. It runs on
// ServeConn's goroutine first, then on one started for each wakeup.
func (c *conn) serve() {
	for {
		switch c.await() {
		case awaitParked:
			return // the poller owns c now: not a field may be touched
		case awaitClose:
			c.close()
			return
		}
		c.served++
		last := c.served >= c.srv.cfg.MaxRequestsPerConn
		if !c.serveRequest(last) || last {
			c.close()
			return
		}
	}
}

// ready is the poller's call for a parked connection: bytes arrived (or
// the peer closed), or the wait's deadline passed.
func (c *conn) ready(readable bool) {
	if !readable {
		c.idle.Store(false)
		c.closeParked()
		return
	}
	c.resumed = true
	go c.serve()
}

// closeParked closes a connection taken back from the poller. A TLS close
// writes an alert (and may wait on a client that reads nothing), so it
// does not hold up the deadline heap's or Shutdown's loop.
func (c *conn) closeParked() {
	if c.tls != nil {
		go c.close()
		return
	}
	c.close()
}

func (c *conn) close() {
	defer c.srv.untrack(c)
	c.endContext()
	c.waiter.Close()
	if c.hijacked {
		return
	}
	c.flush()
	if c.refused {
		c.linger()
	}
	_ = c.rwc.Close()
	c.releaseReader()
	c.giveExchange()
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

// hotWait is how long an idle connection waits for its next request on
// its goroutine, with a small read buffer: a busy client's next request
// comes sooner, and costs one read. Past it the buffer goes back to the
// pool and the connection parks (proxy/netpoll) with no goroutine, so
// idle connections hold neither a buffer nor a stack.
const hotWait = 250 * time.Millisecond

// What await found.
const (
	awaitReady  = iota // a request's first bytes are buffered
	awaitClose         // the connection ends: deadline, EOF, error, shutdown
	awaitParked        // the connection is parked: the caller must let go of it
)

// await waits for the next request unless one is already buffered
// (pipelining).
func (c *conn) await() int {
	if c.br != nil && c.br.Buffered() > 0 {
		if c.srv.draining.Load() {
			return awaitClose
		}
		return awaitReady
	}
	now := time.Now()
	if !c.resumed {
		wait := c.srv.cfg.IdleTimeout
		if c.served == 0 {
			wait = c.srv.cfg.ReadHeaderTimeout
		}
		c.deadline = now.Add(wait)
	}
	c.resumed = false
	c.idle.Store(true)
	if c.srv.draining.Load() {
		c.idle.Store(false)
		return awaitClose
	}
	if c.br != nil && c.br.Size() > smallRead {
		c.releaseReader() // a large head's buffer is not kept for the wait
	}
	if c.br == nil {
		c.br = getReader(smallRead, &c.src)
	}
	hot := c.deadline
	if t := now.Add(c.srv.cfg.hotWait); t.Before(hot) && !c.noPark {
		hot = t
	}
	_ = c.rwc.SetReadDeadline(hot)
	_, err := c.br.Peek(1)
	if err == nil {
		c.idle.Store(false)
		return awaitReady
	}
	if !isTimeout(err) || !hot.Before(c.deadline) {
		c.idle.Store(false)
		return awaitClose
	}
	c.releaseReader()
	c.giveExchange()
	c.endContext()
	c.src.pre = nil
	if c.srv.cfg.beforePark != nil {
		c.srv.cfg.beforePark(c)
	}
	if c.park() {
		// A Close that ran before the park saw an idle connection and
		// only closed its socket: take it back and end it here.
		if !c.srv.draining.Load() || !c.waiter.Unpark() {
			noteParked()
			return awaitParked
		}
		c.idle.Store(false)
		return awaitClose
	}
	// No poller for this connection: wait on the goroutine, holding no
	// buffer where a socket can be waited on without one.
	_ = c.rwc.SetReadDeadline(c.deadline)
	if ok, err := netpoll.WaitReadable(c.rwc); ok && err != nil {
		c.idle.Store(false)
		return awaitClose
	}
	c.br = getReader(smallRead, &c.src)
	_, err = c.br.Peek(1)
	c.idle.Store(false)
	if err != nil {
		return awaitClose
	}
	return awaitReady
}

// park hands the connection to the poller until its next bytes or its
// deadline; false when it cannot be parked.
func (c *conn) park() bool {
	if c.noPark {
		return false
	}
	err := c.waiter.Park(c.sock, c.deadline, c.onReady)
	if err == nil {
		return true
	}
	if errors.Is(err, netpoll.ErrUnsupported) {
		c.noPark = true
	}
	return false
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (c *conn) releaseReader() {
	if c.br != nil && !c.hijacked {
		putReader(c.br.Size(), c.br)
	}
	c.br = nil
}

// growReader moves a head that outgrew the small buffer to one of
// readSize: the bytes read so far go first, then the connection.
func (c *conn) growReader() {
	small := c.br
	buf, _ := small.Peek(small.Buffered())
	c.src.pre = buf
	big := getReader(c.readSize(), &c.src)
	_, _ = big.Peek(len(buf)) // served from pre: no read from the connection
	c.src.pre = nil
	putReader(smallRead, small)
	c.br = big
}

// serveRequest reads, serves and finishes one request; false ends the
// connection.
func (c *conn) serveRequest(last bool) bool {
	if c.x == nil {
		c.takeExchange()
	}
	x := c.x
	start := time.Now()
	n, read, err := c.readHead(start.Add(c.srv.cfg.ReadHeaderTimeout))
	if err != nil {
		var perr *http1.Error
		if errors.As(err, &perr) {
			c.refuse(perr.Status, perr.Reason)
		}
		return false
	}
	if x.head.HasBody() {
		// The body's reads are the only ones until the next request's
		// wait sets its own deadline (Hijack clears them): a request
		// without a body keeps the head's and saves a timer update.
		_ = c.rwc.SetReadDeadline(start.Add(c.srv.cfg.ReadTimeout))
	}
	headRead := start // the head was in the buffer already
	if read {
		headRead = time.Now()
	}
	_ = c.rwc.SetWriteDeadline(headRead.Add(c.srv.cfg.WriteTimeout))
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
	x.res.reset(req, x.head.Close || last || c.srv.draining.Load())
	x.body.reset(&x.head, req)
	c.srv.cfg.Handler.ServeHTTP(&x.res, req)
	if x.res.hijacked {
		c.hijacked = true
		return false
	}
	keep := x.res.finish() && x.body.finish()
	if !keep && !x.body.done() {
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
// byte from being parsed again for every byte. The head's deadline is set
// before its first read from the connection, and only then (read): the
// head of a busy connection is usually whole in the buffer after the
// wait's read, and a deadline costs a timer update.
func (c *conn) readHead(deadline time.Time) (n int, read bool, err error) {
	scanned := 0
	for {
		buf, _ := c.br.Peek(c.br.Buffered())
		if i := http1.HeadEnd(buf, scanned); i >= 0 || len(buf) > c.srv.lim.MaxHead || firstLineTooLong(buf) {
			n, err := http1.ParseRequest(buf, &c.x.head, c.srv.lim)
			return n, read, err
		}
		scanned = max(0, len(buf)-3)
		if !read {
			_ = c.rwc.SetReadDeadline(deadline)
			read = true
		}
		if _, err := c.br.Peek(len(buf) + 1); err != nil {
			if len(buf) > 0 && errors.Is(err, bufio.ErrBufferFull) {
				if c.br.Size() < c.readSize() {
					c.growReader()
					continue
				}
				n, err := http1.ParseRequest(buf, &c.x.head, c.srv.lim)
				return n, read, err
			}
			return 0, read, err
		}
	}
}

// maxRequestLine mirrors http1's default request line limit, so a request
// line without an end is refused (414) without waiting for a whole head.
const maxRequestLine = 8 << 10

func firstLineTooLong(buf []byte) bool {
	return len(buf) > maxRequestLine && bytes.IndexByte(buf[:maxRequestLine], '\n') < 0
}

// reqContext is the context of the connection's requests. It is one per
// busy spell of the connection, not one per request: a request costs no
// context, and the cancellation hooks a transport registers on it
// (AddCancelHook, context.AfterFunc) reuse its state. It ends when the
// connection closes, parks or is hijacked, or BaseContext ends; not when
// a handler returns, so what a handler registers on it must be stopped by
// the handler (a hook's removal, an AfterFunc's stop, a derived context's
// cancel). The engine does not watch a busy connection for the client
// leaving (a write to it fails), so no request is canceled while it runs
// either.
func (c *conn) reqContext() context.Context {
	if c.ctx == nil {
		c.ctx = newReqCtx(c.srv.cfg.BaseContext)
	}
	return c.ctx
}

func (c *conn) endContext() {
	if c.ctx != nil {
		c.ctx.end()
		c.ctx = nil
	}
}

var chunkedTE = []string{"chunked"}

// newRequest builds the request the handler sees, in the exchange. Every
// string in it is cut from one copy of the head, so the head costs one
// allocation however many fields it has; the header map and the slab of
// its values are the exchange's, reused.
func (c *conn) newRequest(head []byte) (*http.Request, error) {
	x := c.x
	h := &x.head
	clear(x.header)
	s := string(head)
	str := func(b []byte) string {
		if len(b) == 0 {
			return ""
		}
		off := cap(head) - cap(b)
		return s[off : off+len(b)]
	}
	target := str(h.Target)
	if err := parseTarget(h, target, &x.url); err != nil {
		return nil, err
	}
	if x.header == nil {
		x.header = make(http.Header, len(h.Fields))
	}
	if cap(x.values) < len(h.Fields) {
		x.values = make([]string, len(h.Fields))
	}
	values := x.values[:len(h.Fields)]
	x.values = values
	r := &x.req
	*r = http.Request{
		Method: str(h.Method), URL: &x.url, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: h.Minor,
		Host: str(h.Host), RemoteAddr: c.remote, RequestURI: target, TLS: c.tls, Close: h.Close,
		Header: x.header, Body: http.NoBody,
	}
	// The copy WithContext makes does not escape: no allocation.
	*r = *r.WithContext(c.reqContext())
	if h.Minor == 0 {
		r.Proto = "HTTP/1.0"
	}
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
		r.ContentLength, r.TransferEncoding, r.Body = -1, chunkedTE, &c.x.body
	case h.ContentLength > 0:
		r.ContentLength, r.Body = h.ContentLength, &c.x.body
	}
	return r, nil
}

// parseTarget sets u to the request target, as url.ParseRequestURI has
// it.
func parseTarget(h *http1.Request, target string, u *url.URL) error {
	switch h.Form {
	case http1.FormAsterisk:
		*u = url.URL{Path: "*"}
		return nil
	case http1.FormAuthority:
		*u = url.URL{Host: target}
		return nil
	}
	if h.Form == http1.FormOrigin && parsePlainOrigin(target, u) {
		return nil
	}
	parsed, err := url.ParseRequestURI(target)
	if err != nil {
		return err
	}
	*u = *parsed
	return nil
}

// parsePlainOrigin sets u to an origin-form target whose path needs no
// unescaping and has no byte url.URL.EscapedPath would escape, and
// reports whether it was one: url.ParseRequestURI's result (Path, RawQuery
// and ForceQuery; RawPath empty) without its allocation. Any other target
// is left to url.ParseRequestURI (TestParsePlainOriginMatchesStd).
func parsePlainOrigin(target string, u *url.URL) bool {
	if target == "" || target[0] != '/' {
		return false
	}
	path, query, hasQuery := strings.Cut(target, "?")
	for i := 0; i < len(path); i++ {
		if !plainPathByte(path[i]) {
			return false
		}
	}
	for i := 0; i < len(query); i++ {
		if c := query[i]; c < ' ' || c == 0x7f {
			return false // url.ParseRequestURI refuses control bytes
		}
	}
	*u = url.URL{Path: path, RawQuery: query, ForceQuery: hasQuery && query == ""}
	return true
}

// plainPathByte: unreserved, and the reserved bytes a path keeps as they
// are (RFC 3986 section 3.3), but not '%'.
func plainPathByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '.', '_', '~', '/', '$', '&', '+', ',', ':', ';', '=', '@':
		return true
	}
	return false
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
