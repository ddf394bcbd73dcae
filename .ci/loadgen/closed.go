package main

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// conn is one client connection speaking HTTP/1.1 by hand: a fixed request
// written in one call and a response read with http.ReadResponse, so the
// load generator costs little next to what it measures.
type conn struct {
	c       net.Conn
	br      *bufio.Reader
	req     []byte
	closing bool // the last response said Connection: close
}

func (o options) dial() (*conn, error) {
	c, err := net.DialTimeout("tcp", o.url.Host, 5*time.Second)
	if err != nil {
		return nil, err
	}
	if o.tls != nil {
		tc := tls.Client(c, o.tls)
		_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
		if err := tc.Handshake(); err != nil {
			c.Close()
			return nil, err
		}
		_ = tc.SetDeadline(time.Time{})
		c = tc
	}
	host := o.url.Host
	if o.tls != nil { // the name the certificate is checked for: servers that match SNI to Host want the same
		host = net.JoinHostPort(o.serverName, o.url.Port())
	}
	req := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: loadgen\r\n\r\n", o.url.RequestURI(), host)
	return &conn{c: c, br: bufio.NewReaderSize(c, 32<<10), req: []byte(req)}, nil
}

// roundTrip sends one request and reads its whole response; anything but
// a complete 200 is an error.
func (c *conn) roundTrip() error {
	_ = c.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.c.Write(c.req); err != nil {
		return err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	c.closing = resp.Close
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	return err
}

// closedLoop keeps o.conns connections busy for o.warmup plus o.dur and
// prints requests/s of the o.dur part. With a warm-up it prints "start"
// when that part begins, so a script can read the server's CPU time from
// there on, without the connections' handshakes.
func closedLoop(o options) {
	var done, failed, redials atomic.Int64
	deadline := time.Now().Add(o.warmup + o.dur)
	var wg sync.WaitGroup
	var start atomic.Int64 // of the measured part, Unix ns
	start.Store(time.Now().UnixNano())
	if o.warmup > 0 {
		time.AfterFunc(o.warmup, func() {
			done.Store(0)
			failed.Store(0)
			start.Store(time.Now().UnixNano())
			fmt.Println("start")
		})
	}
	for range o.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c *conn
			for time.Now().Before(deadline) {
				if c == nil {
					var err error
					if c, err = o.dial(); err != nil {
						noteFailure(err)
						failed.Add(1)
						time.Sleep(10 * time.Millisecond)
						continue
					}
					redials.Add(1)
				}
				err := c.roundTrip()
				if err == nil {
					done.Add(1)
				} else {
					noteFailure(err)
					failed.Add(1)
				}
				if err != nil || c.closing {
					c.c.Close()
					c = nil
				}
			}
			if c != nil {
				c.c.Close()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(time.Unix(0, start.Load()))
	reportFailure()
	fmt.Printf("requests=%d failed=%d connections=%d rps=%.0f\n", done.Load(), failed.Load(), redials.Load(),
		float64(done.Load())/elapsed.Seconds())
}

// handshakes runs o.conns workers for o.dur, each opening a new connection
// (a full TLS handshake) for every request, and prints handshakes/s.
func handshakes(o options) {
	if o.tls == nil {
		fmt.Fprintln(os.Stderr, "loadgen: -mode handshake needs an https:// URL")
		os.Exit(2)
	}
	o.tls.ClientSessionCache = nil
	o.tls.SessionTicketsDisabled = true
	var done, failed atomic.Int64
	deadline := time.Now().Add(o.dur)
	var wg sync.WaitGroup
	start := time.Now()
	for range o.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				c, err := o.dial()
				if err == nil {
					err = c.roundTrip()
					c.c.Close()
				}
				if err != nil {
					noteFailure(err)
					failed.Add(1)
					time.Sleep(10 * time.Millisecond)
					continue
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	reportFailure()
	fmt.Printf("requests=%d failed=%d rps=%.0f\n", done.Load(), failed.Load(), float64(done.Load())/elapsed.Seconds())
}

// idle opens o.conns keep-alive connections (100 at a time), sends one GET
// on each, prints "ready ..." and holds them open for o.dur.
func idle(o options) {
	conns := make([]*conn, o.conns)
	var failed atomic.Int64
	sem := make(chan struct{}, 100)
	var wg sync.WaitGroup
	for i := range conns {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			c, err := o.dial()
			if err == nil {
				if err = c.roundTrip(); err == nil && !c.closing {
					conns[i] = c
					return
				}
				c.c.Close()
			}
			noteFailure(err)
			failed.Add(1)
		}()
	}
	wg.Wait()
	reportFailure()
	fmt.Printf("ready opened=%d failed=%d\n", o.conns-int(failed.Load()), failed.Load())
	time.Sleep(o.dur)
	for _, c := range conns {
		if c != nil {
			c.c.Close()
		}
	}
}

var firstFailure atomic.Value

// noteFailure keeps the first failure, so a run that fails says why once.
func noteFailure(err error) {
	if err == nil {
		err = errors.New("connection: close on the first response")
	}
	firstFailure.CompareAndSwap(nil, err.Error())
}

func reportFailure() {
	if e, _ := firstFailure.Load().(string); e != "" {
		fmt.Fprintln(os.Stderr, "loadgen: first failure:", e)
	}
}
