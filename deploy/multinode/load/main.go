package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type backend struct {
	addr, health string
	up           atomic.Bool
	sent, failed atomic.Int64
}

type summary struct {
	Total      int64            `json:"total"`
	Failed     int64            `json:"failed"`
	Seconds    float64          `json:"seconds"`
	NoBackend  int64            `json:"no_backend"`
	ByBackend  map[string]int64 `json:"by_backend"`
	FailedBy   map[string]int64 `json:"failed_by_backend"`
	Errors     []string         `json:"errors,omitempty"`
	FirstFail  string           `json:"first_failure,omitempty"`
	LastFail   string           `json:"last_failure,omitempty"`
	HealthFlip int64            `json:"health_changes"`
	// FailedTail counts the failures of the last 10 seconds: whether
	// traffic had recovered by the end of the phase.
	FailedTail int64 `json:"failed_last_10s"`
}

type run struct {
	backends []*backend
	client   *http.Client
	paths    []string
	flips    atomic.Int64
	noTarget atomic.Int64

	mu        sync.Mutex // guards the following fields
	errs      []string
	fails     []time.Time
	firstFail time.Time
	lastFail  time.Time
}

func main() {
	backends := flag.String("backends", "", "comma-separated host:port of each node's HTTPS port")
	health := flag.String("health", "", "comma-separated host:port of each node's /readyz port, in the same order")
	caFile := flag.String("ca", "", "PEM bundle to verify the edge with")
	rate := flag.Int("rate", 20, "requests per second")
	maxRun := flag.Duration("max", 5*time.Minute, "stop after this long at the latest")
	paths := flag.String("paths", "/api/todos,/", "comma-separated paths, sent in turn")
	flag.Parse()
	r, err := newRun(*backends, *health, *caFile, strings.Split(*paths, ","))
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *maxRun)
	defer cancel()
	s := r.run(ctx, *rate)
	_ = json.NewEncoder(os.Stdout).Encode(s)
}

func newRun(backends, health, caFile string, paths []string) (*run, error) {
	addrs, checks := strings.Split(backends, ","), strings.Split(health, ",")
	if backends == "" || len(addrs) != len(checks) {
		return nil, errors.New("-backends and -health must list the same number of addresses")
	}
	pem, err := os.ReadFile(caFile) //nolint:gosec // G304: the operator names the CA bundle on the command line
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no certificate", caFile)
	}
	r := &run{paths: paths, client: &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			TLSClientConfig:   &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	for i := range addrs {
		r.backends = append(r.backends, &backend{addr: addrs[i], health: checks[i]})
	}
	return r, nil
}

// run sends rate requests a second until ctx ends, then waits for those
// in flight and sums up.
func (r *run) run(ctx context.Context, rate int) summary {
	start := time.Now()
	var wg sync.WaitGroup
	checkCtx, stopChecks := context.WithCancel(context.Background())
	for _, b := range r.backends {
		r.check(checkCtx, b) // a first verdict before any request
		wg.Go(func() { r.checkLoop(checkCtx, b) })
	}
	var reqs sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			reqs.Wait()
			stopChecks()
			wg.Wait()
			return r.summary(time.Since(start))
		case <-tick.C:
			b := r.pick(n)
			if b == nil {
				r.noTarget.Add(1)
				r.fail("no backend passes its health check")
				continue
			}
			path := r.paths[n%len(r.paths)]
			reqs.Go(func() { r.send(b, path) })
		}
	}
}

// pick is round robin over the backends whose last check passed.
func (r *run) pick(n int) *backend {
	for i := range r.backends {
		if b := r.backends[(n+i)%len(r.backends)]; b.up.Load() {
			return b
		}
	}
	return nil
}

func (r *run) send(b *backend, path string) {
	b.sent.Add(1)
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, "https://"+b.addr+path, nil)
	var res *http.Response
	if err == nil {
		res, err = r.client.Do(req)
	}
	if err == nil {
		_, err = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if err == nil && res.StatusCode != http.StatusOK {
			err = fmt.Errorf("status %d", res.StatusCode)
		}
	}
	if err != nil {
		b.failed.Add(1)
		r.fail(fmt.Sprintf("%s %s %s: %v", time.Now().UTC().Format("15:04:05.000"), b.addr, path, err))
	}
}

func (r *run) fail(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if r.firstFail.IsZero() {
		r.firstFail = now
	}
	r.lastFail = now
	r.fails = append(r.fails, now)
	if len(r.errs) < 20 {
		r.errs = append(r.errs, msg)
	}
}

func (r *run) checkLoop(ctx context.Context, b *backend) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.check(ctx, b)
		}
	}
}

// check marks b up when its edge's /readyz answers 200 within a second.
func (r *run) check(ctx context.Context, b *backend) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	ok := false
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+b.health+"/readyz", nil)
	if res, err := http.DefaultTransport.RoundTrip(req); err == nil {
		ok = res.StatusCode == http.StatusOK
		res.Body.Close()
	}
	if b.up.Swap(ok) != ok {
		r.flips.Add(1)
	}
}

func (r *run) summary(d time.Duration) summary {
	s := summary{Seconds: d.Seconds(), NoBackend: r.noTarget.Load(), HealthFlip: r.flips.Load(),
		ByBackend: map[string]int64{}, FailedBy: map[string]int64{}}
	// A tick with no backend up is an outage as the client sees it: counted
	// as sent and failed.
	s.Total, s.Failed = s.NoBackend, s.NoBackend
	for _, b := range r.backends {
		s.Total += b.sent.Load()
		s.Failed += b.failed.Load()
		s.ByBackend[b.addr] = b.sent.Load()
		s.FailedBy[b.addr] = b.failed.Load()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s.Errors = r.errs
	end := time.Now()
	for _, t := range r.fails {
		if end.Sub(t) <= 10*time.Second {
			s.FailedTail++
		}
	}
	if !r.firstFail.IsZero() {
		s.FirstFail, s.LastFail = r.firstFail.UTC().Format(time.RFC3339Nano), r.lastFail.UTC().Format(time.RFC3339Nano)
	}
	return s
}
