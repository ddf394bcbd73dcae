package compress

import (
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/drawbridge-proxy/drawbridge/proxy/accept"
)

// Deps are what a Compressor reports to.
type Deps struct {
	// Compressed, when set, learns each compressed response's coding and its
	// body size before and after.
	Compressed func(r *http.Request, encoding string, in, out int64)
}

// Compressor wraps handlers of one route.
type Compressor struct {
	cfg        Config
	majors     []string        // "text/" of "text/*"
	exact      map[string]bool // "application/json"
	compressed func(r *http.Request, encoding string, in, out int64)
}

// New returns a Compressor for cfg, which must have had Defaults and Validate.
func New(cfg Config, deps Deps) *Compressor {
	c := &Compressor{cfg: cfg, exact: map[string]bool{}, compressed: deps.Compressed}
	for _, t := range cfg.Types {
		if major, ok := strings.CutSuffix(t, "*"); ok {
			c.majors = append(c.majors, major)
		} else {
			c.exact[t] = true
		}
	}
	return c
}

// Wrap returns next with its responses compressed where that is right.
func (c *Compressor) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !eligibleRequest(r) {
			next.ServeHTTP(w, r)
			return
		}
		cw := &responseWriter{ResponseWriter: w, c: c, req: r,
			enc: accept.Encoding(r.Header.Get("Accept-Encoding"), c.cfg.Encodings...)}
		defer cw.finish()
		next.ServeHTTP(cw, r)
	})
}

// eligibleRequest leaves out what never gets a compressed body: HEAD
// (no body), Range requests (ranges are of the identity bytes; RFC 9110
// section 14.1.1 makes a compressed 206 meaningless to most clients) and
// upgrades (the connection stops being HTTP).
func eligibleRequest(r *http.Request) bool {
	return r.Method != http.MethodHead && r.Method != http.MethodConnect &&
		r.Header.Get("Range") == "" && r.Header.Get("Upgrade") == ""
}

// allowedType reports a Content-Type on the allow-list.
func (c *Compressor) allowedType(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	if mt == "" || mt == "text/event-stream" {
		return false // no type: net/http would sniff the encoded bytes; SSE: a stream of small flushes
	}
	if c.exact[mt] {
		return true
	}
	for _, m := range c.majors {
		if strings.HasPrefix(mt, m) {
			return true
		}
	}
	return false
}

// Encoder pools: one per coding. Level 5 (gzip) and zstd's default are the
// usual proxy trade-off; the benchmark in compress_test.go measures it.
var (
	gzipPool = sync.Pool{New: func() any { w, _ := gzip.NewWriterLevel(io.Discard, 5); return w }}
	zstdPool = sync.Pool{New: func() any {
		w, _ := zstd.NewWriter(io.Discard, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault),
			zstd.WithWindowSize(1<<20), zstd.WithLowerEncoderMem(true))
		return w
	}}
)

// encoder is what both codings' writers offer.
type encoder interface {
	io.WriteCloser
	Flush() error
	Reset(io.Writer)
}

func getEncoder(coding string, w io.Writer) encoder {
	var e encoder
	if coding == Zstd {
		e = zstdPool.Get().(*zstd.Encoder) //nolint:errcheck // the pool holds only *zstd.Encoder
	} else {
		e = gzipPool.Get().(*gzip.Writer) //nolint:errcheck // the pool holds only *gzip.Writer
	}
	e.Reset(w)
	return e
}

func putEncoder(coding string, e encoder) {
	e.Reset(io.Discard) // drop the reference to the response
	if coding == Zstd {
		zstdPool.Put(e)
	} else {
		gzipPool.Put(e)
	}
}
