// Command loadgen sends HTTP GETs at a fixed rate (open loop) and reports
// throughput and latency percentiles. Latency is measured from when each
// request was due, not when it was sent, so a stalled server cannot hide
// its queueing (no coordinated omission). It only targets the URL it is given;
// the benchmark script points it at 127.0.0.1.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	url := flag.String("url", "", "URL to GET")
	rate := flag.Int("rate", 1000, "requests per second")
	dur := flag.Duration("duration", 10*time.Second, "how long to send (bounded to 2m)")
	conns := flag.Int("conns", 64, "maximum concurrent requests")
	flag.Parse()
	if *url == "" || *rate <= 0 || *dur <= 0 || *dur > 2*time.Minute {
		fmt.Fprintln(os.Stderr, "usage: loadgen -url URL -rate N -duration D (D <= 2m)")
		os.Exit(2)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *conns, MaxConnsPerHost: *conns}, Timeout: 10 * time.Second}
	total := int(float64(*rate) * dur.Seconds())
	lat := make([]time.Duration, total)
	var failed atomic.Int64
	sem := make(chan struct{}, *conns)
	var wg sync.WaitGroup
	interval := time.Second / time.Duration(*rate)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), *dur+15*time.Second)
	defer cancel()
	for i := 0; i < total; i++ {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(i int, due time.Time) {
			defer func() { <-sem; wg.Done() }()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
			resp, err := client.Do(req)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
			}
			if err != nil {
				failed.Add(1)
			}
			lat[i] = time.Since(due)
		}(i, due)
	}
	wg.Wait()
	elapsed := time.Since(start)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	fmt.Printf("requests=%d failed=%d rps=%.0f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f\n",
		total, failed.Load(), float64(total)/elapsed.Seconds(), pct(0.50), pct(0.90), pct(0.99), pct(1))
}
