package proxy

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"go.opentelemetry.io/otel/trace"
)

// exchange is what one request learns on its way through the proxy; the
// access log line is written from it.
type exchange struct {
	start       time.Time
	requestID   string
	listener    string
	route       string
	upstream    string
	clientIP    string
	peerTrusted bool
	identity    string // verified client identity, when the listener has mTLS
	denied      string // why the identity was refused (403); "" otherwise
	hsts        bool   // the listener sets Strict-Transport-Security
	path        string // normalised path
	pathChanged bool
	upgraded    bool
	rw          http.ResponseWriter // the connection's writer, for its deadlines
	w           http.ResponseWriter // what the forwarder writes to, for 1xx heads
	routePrefix string              // the matched route's path prefix, for span names
	span        trace.Span          // the server span; nil without tracing
	traceID     string              // of a sampled server span, for exemplars
	sampled     bool
	static      string // a static route's result (proxy/static.Result*); "" when forwarded
	encoding    string // the content coding of the response body, when drawbridge chose it
	limited     string // rate or in_flight when a route limit refused the request

	// What a request would otherwise allocate one by one lives here: the
	// request the handler chain sees (bound to ctx, which carries the
	// exchange), the recorder, the body meter, the upstream request, the
	// first attempt's request, and the small header values the forwarder sets.
	ctx     exchangeCtx
	in      http.Request
	rec     recorder
	body    meteredBody
	out     http.Request
	outURL  url.URL
	try     http.Request
	tryURL  url.URL
	tryUsed bool
	vals    [6]string
	nvals   int
	idBytes [requestIDLen]byte // a generated requestID's bytes (ownRequestID)

	mu       sync.Mutex // guards the attempt fields: attempts and the access log may race on a canceled request
	attempts int
	target   string
	upStatus int
	upTime   time.Duration
	err      error
}

type exchangeKey struct{}

// exchangeCtx is a request's context that carries its exchange: a
// context.WithValue that lives inside the exchange.
type exchangeCtx struct {
	context.Context
	ex *exchange
}

func (c *exchangeCtx) Value(key any) any {
	if _, ok := key.(exchangeKey); ok {
		return c.ex
	}
	return c.Context.Value(key)
}

// bind returns r with a context that carries the exchange. The request
// copy and the context are the exchange's own: binding allocates nothing
// (WithContext is inlined and its copy does not escape).
func (ex *exchange) bind(r *http.Request) *http.Request {
	ex.ctx = exchangeCtx{Context: r.Context(), ex: ex}
	ex.in = *r.WithContext(&ex.ctx)
	return &ex.in
}

// attemptRequest is req sent to target under ctx. The first attempt's
// lives in the exchange; a retry's is its own, since a transport may still
// read the request of an attempt that failed (net/http's closes bodies
// from its own goroutines).
func (ex *exchange) attemptRequest(req *http.Request, ctx context.Context, target string) *http.Request {
	out, dest := &ex.try, &ex.tryURL
	if ex.tryUsed {
		out, dest = new(http.Request), new(url.URL)
	}
	ex.tryUsed = true
	if ctx == req.Context() {
		*out = *req
	} else {
		*out = *req.WithContext(ctx)
	}
	*dest = *req.URL
	dest.Host = target
	out.URL = dest
	return out
}

// ownRequestID generates a request ID into the exchange's own bytes, so it
// costs no allocation of its own. The string points into the exchange:
// sound because an exchange is never reused (it is not pooled, and these
// bytes are written once), so the string is as immutable as any other.
func (ex *exchange) ownRequestID() string {
	putRequestID(&ex.idBytes)
	return unsafe.String(&ex.idBytes[0], len(ex.idBytes)) //nolint:gosec // G103: see above; the bytes never change
}

func exchangeFrom(ctx context.Context) *exchange {
	if ex, ok := ctx.Value(exchangeKey{}).(*exchange); ok {
		return ex
	}
	return &exchange{} // a request that bypassed the handler (tests); records go nowhere
}

// value returns a header value slice holding s, from the exchange's own
// storage while it lasts. Its length is its capacity, so an append copies.
func (ex *exchange) value(s string) []string {
	if ex.nvals == len(ex.vals) {
		return []string{s}
	}
	i := ex.nvals
	ex.nvals++
	ex.vals[i] = s
	return ex.vals[i : i+1 : i+1]
}

// recordAttempt notes one attempt toward a target.
func (ex *exchange) recordAttempt(target string, status int, took time.Duration, err error) {
	ex.mu.Lock()
	ex.attempts++
	ex.target, ex.upStatus, ex.upTime, ex.err = target, status, took, err
	ex.mu.Unlock()
}

func (ex *exchange) snapshot() (attempts int, target string, status int, took time.Duration, err error) {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	return ex.attempts, ex.target, ex.upStatus, ex.upTime, ex.err
}

// recorder counts what goes back to the client. It exposes the wrapped
// writer through Unwrap, so http.ResponseController (flush, hijack,
// deadlines) reaches the real connection.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 || w.status >= 100 && w.status < 200 && w.status != http.StatusSwitchingProtocols {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// bufferPool lends copy buffers: 32 KiB to the forwarder; relayed streams
// get larger ones (fewer read and write calls per megabyte).
type bufferPool struct {
	pool sync.Pool
	size int
}

func newBufferPool(size int) *bufferPool {
	return &bufferPool{size: size, pool: sync.Pool{New: func() any { b := make([]byte, size); return &b }}}
}

func (p *bufferPool) Get() []byte {
	if b, ok := p.pool.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, p.size)
}
func (p *bufferPool) Put(b []byte) { p.pool.Put(&b) }

// get and put lend a buffer without allocating the pointer Put makes.
func (p *bufferPool) get() *[]byte {
	if b, ok := p.pool.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, p.size)
	return &b
}

func (p *bufferPool) put(b *[]byte) { p.pool.Put(b) }

// meteredBody counts the request body bytes the client sent.
type meteredBody struct {
	io.ReadCloser
	n atomic.Int64
}

func (b *meteredBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}
