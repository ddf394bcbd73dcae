// Command stdproxy is the benchmark's baseline for Go itself: the standard
// library's httputil.ReverseProxy with a keep-alive pool, nothing else.
// Its gap to nginx is net/http's; drawbridge's gap to it is drawbridge's.
package main

import (
	"flag"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:18087", "address to serve on")
	target := flag.String("target", "http://127.0.0.1:18081", "backend URL")
	flag.Parse()
	u, err := url.Parse(*target)
	if err != nil {
		log.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second}
	rp.ErrorLog = log.New(nilWriter{}, "", 0)
	srv := &http.Server{Addr: *listen, Handler: rp, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

type nilWriter struct{}

func (nilWriter) Write(p []byte) (int, error) { return len(p), nil }
