package main

import (
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// openLoop sends GETs at o.rate for o.dur over o.conns keep-alive
// connections and prints latency percentiles counted from each request's
// due time: a request waiting for a free connection is late, and its wait
// counts. The connections speak HTTP/1.1 by hand (as closedLoop's do), so
// the generator stays cheap next to the server it shares a core with.
func openLoop(o options) {
	total := int(float64(o.rate) * o.dur.Seconds())
	lat := make([]time.Duration, total)
	var next, failed atomic.Int64
	due := make(chan time.Time, total)
	var wg sync.WaitGroup
	for range o.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c *conn
			for d := range due {
				var err error
				if c == nil {
					c, err = o.dial()
				}
				if err == nil {
					if err = c.roundTrip(); err != nil || c.closing {
						c.c.Close()
						c = nil
					}
				}
				if err != nil {
					noteFailure(err)
					failed.Add(1)
				}
				lat[next.Add(1)-1] = time.Since(d)
			}
			if c != nil {
				c.c.Close()
			}
		}()
	}
	interval := time.Second / time.Duration(o.rate)
	start := time.Now()
	for i := range total {
		d := start.Add(time.Duration(i) * interval)
		if ahead := time.Until(d); ahead > 50*time.Microsecond {
			time.Sleep(ahead)
		}
		due <- d
	}
	close(due)
	wg.Wait()
	elapsed := time.Since(start)
	reportFailure()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	fmt.Printf("requests=%d failed=%d rps=%.0f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f\n",
		total, failed.Load(), float64(total)/elapsed.Seconds(), pct(0.50), pct(0.90), pct(0.99), pct(1))
}
