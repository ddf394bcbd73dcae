// Command stdproxy is the benchmark's baseline for Go itself, set up as a
// competent Go programmer would: the standard library's
// httputil.ReverseProxy with Rewrite, a pooled copy buffer and a keep-alive
// pool, nothing else. Its gap to nginx is net/http's; drawbridge's gap to
// it is drawbridge's.
//
// With -respond it proxies nothing and answers every request itself: the
// cost of net/http's server side alone, which is the floor under any proxy
// built on net/http. With -bare-tls it is not even an HTTP server: a
// crypto/tls listener that answers one request per connection, the floor
// under any TLS handshake in Go.
//
// -cert/-key serve TLS, -client-ca requires and verifies client
// certificates, -access-log writes one line per request (buffered, flushed
// every second) as a competent operator would log.
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"log"

	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"sync"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:18087", "address to serve on")
	target := flag.String("target", "http://127.0.0.1:18081", "backend URL")
	respond := flag.Bool("respond", false, "answer requests here instead of proxying them")
	bare := flag.Bool("bare-tls", false, "a bare crypto/tls server: one fixed answer per connection, then close")
	cert := flag.String("cert", "", "serve TLS with this certificate (PEM)")
	key := flag.String("key", "", "and this key")
	clientCA := flag.String("client-ca", "", "require client certificates issued by this CA (PEM)")
	accessLog := flag.String("access-log", "", "append one line per request to this file")
	flag.Parse()
	tlsConfig, err := serverTLS(*cert, *key, *clientCA)
	if err != nil {
		log.Fatal(err)
	}
	if *bare {
		log.Fatal(serveBareTLS(*listen, tlsConfig))
	}
	handler, err := newHandler(*target, *respond)
	if err != nil {
		log.Fatal(err)
	}
	if *accessLog != "" {
		if handler, err = withAccessLog(handler, *accessLog); err != nil {
			log.Fatal(err)
		}
	}
	srv := &http.Server{Addr: *listen, Handler: handler, ReadHeaderTimeout: 10 * time.Second, TLSConfig: tlsConfig,
		ErrorLog: log.New(io.Discard, "", 0)}
	if tlsConfig != nil {
		log.Fatal(srv.ListenAndServeTLS("", ""))
	}
	log.Fatal(srv.ListenAndServe())
}

func serverTLS(cert, key, clientCA string) (*tls.Config, error) {
	if cert == "" {
		return nil, nil
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	if clientCA != "" {
		pem, err := os.ReadFile(clientCA)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = x509.NewCertPool()
		if !cfg.ClientCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no certificates", clientCA)
		}
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// serveBareTLS answers each connection's first request head with a fixed
// response and closes it.
func serveBareTLS(addr string, cfg *tls.Config) error {
	if cfg == nil {
		return fmt.Errorf("-bare-tls needs -cert and -key")
	}
	ln, err := tls.Listen("tcp", addr, cfg)
	if err != nil {
		return err
	}
	const answer = "HTTP/1.1 200 OK\r\nContent-Length: 23\r\nConnection: close\r\n\r\nhello from the backend\n"
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(c)
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					return
				}
				if len(line) <= 2 {
					break
				}
			}
			_, _ = io.WriteString(c, answer)
		}()
	}
}

// withAccessLog logs method, path, status, bytes and duration of every
// request through a buffer flushed once a second.
func withAccessLog(next http.Handler, path string) (http.Handler, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	w := bufio.NewWriterSize(f, 64<<10)
	go func() {
		for range time.Tick(time.Second) {
			mu.Lock()
			_ = w.Flush()
			mu.Unlock()
		}
	}()
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: rw, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		mu.Lock()
		fmt.Fprintf(w, "%s %s %s %d %d %s\n", start.UTC().Format(time.RFC3339Nano), r.Method, r.URL.Path, rec.status,
			rec.bytes, time.Since(start))
		mu.Unlock()
	}), nil
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (s *statusRecorder) WriteHeader(code int) { s.status = code; s.ResponseWriter.WriteHeader(code) }

func (s *statusRecorder) Write(b []byte) (int, error) {
	n, err := s.ResponseWriter.Write(b)
	s.bytes += n
	return n, err
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

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
