// Command pgtls puts PostgreSQL's TLS on the ends of a relay so that nginx's
// stream module, which cannot answer or send PostgreSQL's SSLRequest, can
// be measured doing the same work as drawbridge's postgres hop: terminate
// TLS with a verified client certificate, originate TLS with a client
// certificate. .ci/bench-stream runs one pair of these around each relay
// under test, so both relays see the same bytes and the shims cost both the
// same.
//
//	-mode client  accepts plain connections (pgbench with sslmode=disable)
//	              and relays each over direct TLS (ALPN "postgresql", a
//	              client certificate) to -target
//	-mode server  accepts TLS, either direct or after an SSLRequest (answered
//	              "S"), requires a client certificate from -client-ca, and
//	              relays each to -target (the server's Unix socket, plain)
//
// It serves 127.0.0.1 only and every connection is bounded by -idle.
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"flag"
	"log"
	"net"
	"os"
	"strings"
	"time"
)

const sslRequestCode = 80877103

func main() {
	mode := flag.String("mode", "", "client | server")
	listen := flag.String("listen", "127.0.0.1:0", "address to accept on")
	target := flag.String("target", "", "host:port, or unix:/path/.s.PGSQL.5432 (server)")
	cert := flag.String("cert", "", "certificate to present (PEM)")
	key := flag.String("key", "", "its key")
	ca := flag.String("ca", "", "client: CA bundle to verify the relay with")
	clientCA := flag.String("client-ca", "", "server: CA bundle client certificates must chain to")
	serverName := flag.String("servername", "localhost", "client: name to verify")
	idle := flag.Duration("idle", 10*time.Minute, "close a connection silent this long")
	flag.Parse()
	pair, err := tls.LoadX509KeyPair(*cert, *key)
	if err != nil {
		log.Fatal(err)
	}
	if !strings.HasPrefix(*listen, "127.0.0.1:") {
		log.Fatal("-listen must be on 127.0.0.1")
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	var handle func(net.Conn)
	switch *mode {
	case "client":
		cfg := &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool(*ca), ServerName: *serverName,
			NextProtos: []string{"postgresql"}, MinVersion: tls.VersionTLS13}
		handle = func(c net.Conn) {
			up, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", *target, cfg)
			if err != nil {
				log.Print(err)
				return
			}
			relay(c, up, *idle)
		}
	case "server":
		cfg := &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: pool(*clientCA),
			ClientAuth: tls.RequireAndVerifyClientCert, NextProtos: []string{"postgresql"}, MinVersion: tls.VersionTLS13}
		network, addr := "tcp", *target
		if path, ok := strings.CutPrefix(*target, "unix:"); ok {
			network, addr = "unix", path
		}
		handle = func(c net.Conn) {
			tc, err := acceptTLS(c, cfg)
			if err != nil {
				log.Print(err)
				return
			}
			up, err := net.DialTimeout(network, addr, 5*time.Second)
			if err != nil {
				log.Print(err)
				return
			}
			relay(tc, up, *idle)
		}
	default:
		log.Fatal("-mode must be client or server")
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go func() {
			defer c.Close()
			handle(c)
		}()
	}
}

func pool(file string) *x509.CertPool {
	pem, err := os.ReadFile(file)
	if err != nil {
		log.Fatal(err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pem) {
		log.Fatalf("%s: no certificates", file)
	}
	return p
}

// acceptTLS answers an SSLRequest with "S" when the connection opens with
// one, then runs the TLS handshake (a direct ClientHello works too).
func acceptTLS(c net.Conn, cfg *tls.Config) (*tls.Conn, error) {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReaderSize(c, 1024)
	head, err := br.Peek(8)
	if err != nil {
		return nil, err
	}
	var conn net.Conn = &bufferedConn{Conn: c, r: br}
	if binary.BigEndian.Uint32(head[:4]) == 8 && binary.BigEndian.Uint32(head[4:]) == sslRequestCode {
		_, _ = br.Discard(8)
		if _, err := c.Write([]byte{'S'}); err != nil {
			return nil, err
		}
	}
	tc := tls.Server(conn, cfg)
	if err := tc.Handshake(); err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return tc, nil
}

type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// relay copies both ways until either side ends, closing both; silence for
// idle ends it too.
func relay(a, b net.Conn, idle time.Duration) {
	defer b.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			_ = src.SetReadDeadline(time.Now().Add(idle))
			n, err := src.Read(buf)
			if n > 0 {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil { // EOF, a deadline or a reset: the relay is over either way
				break
			}
		}
		done <- struct{}{}
	}
	go pipe(a, b)
	go pipe(b, a)
	<-done
}
