package proxy

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"

	"github.com/drawbridge-proxy/drawbridge/proxy/http1"
)

// forwarder is what a route that forwards runs once the listener has
// admitted the request: it builds the upstream request from the client's
// (hop-by-hop fields gone, X-Forwarded-* and identity set, the route's
// header edits), sends it through the route's transport, and copies the
// answer back: 1xx, the head, the body through a pooled buffer (flushed
// per write for streams), trailers; after a 101 it relays bytes both ways.
// Failures become statuses through the one classifier (errors.go).
type forwarder struct {
	route     *route
	transport http.RoundTripper // the route's (routeTransport); set when the route is built
	errs      *errorWriter
	buffers   *bufferPool
	log       *slog.Logger
	headers   sync.Pool // upstream request header maps, reused behind native transports (reusable)
}

func (f *forwarder) ServeHTTP(w http.ResponseWriter, in *http.Request) {
	ex := exchangeFrom(in.Context())
	native := !f.needsTrace()
	out, err := f.outbound(in, ex, f.header(native, len(in.Header)+6), !native)
	if err != nil {
		f.errs.proxyError(w, in, err)
		return
	}
	if native {
		defer f.headers.Put(out.Header)
	}
	if out.Body != nil {
		defer out.Body.Close()
	}
	ex.w = w
	if !native {
		// net/http's Transport reports 1xx heads through the trace; the
		// native one calls interimFor (upstream.go) without one.
		trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			return ex.interim(code, http.Header(h))
		}}
		out = out.WithContext(httptrace.WithClientTrace(out.Context(), trace))
	}
	resp, err := f.transport.RoundTrip(out)
	if err != nil {
		f.errs.proxyError(w, in, err)
		return
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		f.route.modifyResponse(resp, ex)
		f.upgrade(w, in, out, resp)
		return
	}
	removeHopByHop(resp.Header)
	f.route.modifyResponse(resp, ex)
	f.respond(w, in, resp)
}

// respond copies a final response to the client.
func (f *forwarder) respond(w http.ResponseWriter, in *http.Request, resp *http.Response) {
	h := w.Header()
	copyHeader(h, resp.Header)
	// Trailer is not in the response's header map: it lists Trailer's keys.
	announced := len(resp.Trailer)
	if announced > 0 {
		names := make([]string, 0, announced)
		for k := range resp.Trailer {
			names = append(names, k)
		}
		h.Add("Trailer", strings.Join(names, ", "))
	}
	w.WriteHeader(resp.StatusCode)
	err := f.copyBody(w, resp)
	// Reading the body to its end filled resp.Trailer. Take it before
	// Close: closing hands resp back to the native transport's connection,
	// which rebuilds it for its next response.
	trailer := resp.Trailer
	resp.Body.Close()
	if err != nil {
		f.abort(w, in)
		return
	}
	if len(trailer) == 0 {
		return
	}
	// Trailers force chunked framing, even for a short body.
	_ = http.NewResponseController(w).Flush()
	if len(trailer) == announced {
		copyHeader(h, trailer)
		return
	}
	for k, vv := range trailer {
		for _, v := range vv {
			h.Add(http.TrailerPrefix+k, v)
		}
	}
}

// streams reports a response to flush on every write: server-sent events,
// and any body whose length was not known when its head was sent.
func streams(resp *http.Response) bool {
	return resp.ContentLength == -1 || isEventStream(resp.Header.Get("Content-Type"))
}

// copyBody copies the response body through a pooled buffer. A stream's
// head goes out at once, before its first event, and each write after it.
func (f *forwarder) copyBody(w http.ResponseWriter, resp *http.Response) error {
	rc := http.NewResponseController(w)
	flush := streams(resp)
	if flush {
		_ = rc.Flush()
	}
	bp := f.buffers.get()
	defer f.buffers.put(bp)
	buf := *bp
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return err // the client is gone: the deferred close cancels the upstream
			}
			if flush {
				_ = rc.Flush()
			}
		}
		if rerr == io.EOF { //nolint:errorlint // io.EOF is returned unwrapped by contract
			return nil
		}
		if rerr != nil {
			if !errors.Is(rerr, errClientGone) && resp.Request != nil && resp.Request.Context().Err() == nil {
				f.log.Warn("upstream response body failed", "route", f.route.name, "error", rerr)
			}
			return rerr
		}
	}
}

// abort ends a response whose body broke half way, so the client cannot
// take the part it got for the whole: net/http's server aborts on
// http.ErrAbortHandler (an HTTP/2 stream is reset); the native engine's
// connection is taken and closed before the body's framing is finished.
func (f *forwarder) abort(w http.ResponseWriter, in *http.Request) {
	if in.Context().Value(http.ServerContextKey) != nil {
		panic(http.ErrAbortHandler)
	}
	if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
		_ = conn.Close()
	}
}

// header returns an empty header map for the upstream request: a reused
// one when the transports are native, since those read it only while
// writing the head, which is over when the exchange is. net/http's may
// read a request after RoundTrip returns, so it always gets a new one.
func (f *forwarder) header(native bool, size int) http.Header {
	if native {
		if h, ok := f.headers.Get().(http.Header); ok {
			clear(h)
			return h
		}
	}
	return make(http.Header, size)
}

// needsTrace reports whether 1xx heads come back only through an
// httptrace (net/http's Transport, http1: std).
func (f *forwarder) needsTrace() bool {
	rt, ok := f.transport.(*routeTransport)
	if !ok {
		return true
	}
	return rt.up.native == nil || rt.fbUp != nil && rt.fbUp.native == nil
}

// interim forwards a 1xx head (103 Early Hints, 100 Continue from a
// transport that reports it) to the client. Its fields are sent with it
// only: the final response's header is as it was before.
func (ex *exchange) interim(code int, fields http.Header) error {
	w := ex.w
	if w == nil {
		return nil
	}
	h := w.Header()
	saved := make(map[string][]string, len(fields))
	for k, vv := range fields {
		if prior, ok := h[k]; ok {
			saved[k] = prior
		} else {
			saved[k] = nil
		}
		h[k] = vv
	}
	w.WriteHeader(code)
	for k, prior := range saved {
		if prior == nil {
			delete(h, k)
		} else {
			h[k] = prior
		}
	}
	return nil
}

// copyHeader adds src's fields to dst. The value slices are shared: src
// is the upstream's response, read once.
func copyHeader(dst, src http.Header) {
	for k, vv := range src {
		if prior, ok := dst[k]; ok {
			dst[k] = append(prior[:len(prior):len(prior)], vv...)
			continue
		}
		dst[k] = vv
	}
}

// removeHopByHop removes the hop-by-hop fields of RFC 9110 section 7.6.1:
// those Connection nominates, then the fixed list.
func removeHopByHop(h http.Header) {
	for _, v := range h["Connection"] {
		for _, name := range strings.Split(v, ",") {
			if name = textproto.TrimString(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range hopByHop {
		delete(h, name)
	}
}

// upgradeType is the protocol a message asks to switch to, or "".
func upgradeType(h http.Header) string {
	if !http1.HasToken(h["Connection"], "upgrade") {
		return ""
	}
	return h.Get("Upgrade")
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

var errBadUpgrade = errors.New("client asked to switch to an invalid protocol")

func badUpgrade(proto string) error { return fmt.Errorf("%w %q", errBadUpgrade, proto) }
