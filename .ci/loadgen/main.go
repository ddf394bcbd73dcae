// Command loadgen is the benchmarks' load generator for what wrk cannot do.
// It only targets the URL it is given; the benchmark scripts point it at
// 127.0.0.1 inside a network namespace of their own. Every mode is bounded
// in time (at most 2m) and in connections.
//
//	-mode open       GETs at a fixed rate (open loop), latency percentiles
//	                 measured from when each request was due, not when it was
//	                 sent, so a stalled server cannot hide its queueing
//	-mode closed     -conns keep-alive connections, each sending its next
//	                 request as soon as the last answer is read (closed loop);
//	                 with -cert/-key it presents a client certificate
//	-mode handshake  -conns workers, each opening a new TLS connection per
//	                 request (no session resumption: every one is a full
//	                 handshake), one GET, then close
//	-mode idle       opens -conns keep-alive connections, one GET on each,
//	                 prints "ready", then holds them idle for -duration
//
// Every mode prints one line of key=value pairs.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"net/url"
	"os"
	"time"
)

type options struct {
	url        *url.URL
	rate       int
	dur        time.Duration
	conns      int
	tls        *tls.Config // nil for http://
	serverName string
	warmup     time.Duration // closed: run this long before the measured part
}

func main() {
	mode := flag.String("mode", "open", "open | closed | handshake | idle")
	rawURL := flag.String("url", "", "URL to GET (http:// or https://)")
	rate := flag.Int("rate", 1000, "open: requests per second")
	dur := flag.Duration("duration", 10*time.Second, "how long to send, or to hold (idle); at most 2m")
	conns := flag.Int("conns", 64, "concurrent connections (open: at most; idle: how many to open, at most 20000)")
	cert := flag.String("cert", "", "client certificate (PEM) to present")
	key := flag.String("key", "", "its key (PEM)")
	ca := flag.String("ca", "", "CA bundle (PEM) to verify the server with")
	serverName := flag.String("servername", "localhost", "TLS server name to verify")
	warmup := flag.Duration("warmup", 0, "closed: run this long first, then print \"start\" and measure -duration")
	flag.Parse()
	u, err := url.Parse(*rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || *rate <= 0 || *dur <= 0 ||
		*dur > 2*time.Minute || *conns <= 0 || *conns > 20000 ||
		*warmup < 0 || *warmup > 10*time.Second {
		fmt.Fprintln(os.Stderr, "usage: loadgen -mode open|closed|handshake|idle -url http(s)://127.0.0.1:PORT/ [-rate N] [-duration D<=2m] [-conns N<=20000] [-cert F -key F -ca F]")
		os.Exit(2)
	}
	o := options{url: u, rate: *rate, dur: *dur, conns: *conns, serverName: *serverName, warmup: *warmup}
	if u.Scheme == "https" {
		if o.tls, err = clientTLS(*cert, *key, *ca, *serverName); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(1)
		}
	}
	switch *mode {
	case "open":
		openLoop(o)
	case "closed":
		closedLoop(o)
	case "handshake":
		handshakes(o)
	case "idle":
		idle(o)
	default:
		fmt.Fprintln(os.Stderr, "loadgen: unknown -mode", *mode)
		os.Exit(2)
	}
}

// clientTLS trusts ca (or the system roots) and presents cert when given.
// It keeps no session cache, so every new connection is a full handshake.
func clientTLS(cert, key, ca, serverName string) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS12,
		// X25519 only, as wrk's OpenSSL offers: every server then does the same key exchange.
		CurvePreferences: []tls.CurveID{tls.X25519}}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no certificates", ca)
		}
	}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}
