// Command stdproxy is the benchmark's baseline for Go itself, set up as a
// competent Go programmer would: the standard library's
// httputil.ReverseProxy with Rewrite, a pooled copy buffer and a keep-alive
// pool, nothing else. Its gap to nginx is net/http's; drawbridge's gap to
// it is drawbridge's.
//
// With -respond it proxies nothing and answers every request itself: the
// cost of net/http's server side alone, which is the floor under any proxy
// built on net/http.
package main

import (
	"flag"
	"io"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:18087", "address to serve on")
	target := flag.String("target", "http://127.0.0.1:18081", "backend URL")
	respond := flag.Bool("respond", false, "answer requests here instead of proxying them")
	flag.Parse()
	handler, err := newHandler(*target, *respond)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Addr: *listen, Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

func newHandler(target string, respond bool) (http.Handler, error) {
	if respond {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "hello from the backend\n")
		}), nil
	}
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	return &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.SetXForwarded()
		},
		Transport:  &http.Transport{MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second},
		BufferPool: &bufferPool{},
		ErrorLog:   log.New(io.Discard, "", 0),
	}, nil
}

// bufferPool reuses ReverseProxy's 32 KiB copy buffers; without one it
// allocates a buffer per request and the garbage collector pays for it.
type bufferPool struct{ pool sync.Pool }

func (p *bufferPool) Get() []byte {
	if b, ok := p.pool.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, 32<<10)
}

func (p *bufferPool) Put(b []byte) { p.pool.Put(&b) }
