package health_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/drawbridge-proxy/drawbridge/health"
)

// target is what the proxy's balancer targets look like to the checker.
type target struct {
	addr    string
	healthy atomic.Bool
}

func (t *target) Address() string    { return t.addr }
func (t *target) SetHealthy(ok bool) { t.healthy.Store(ok) }

// A checker runs a probe against every target it is given and reports
// verdicts through SetHealthy, after healthy_threshold passes in a row or
// unhealthy_threshold failures in a row.
func ExampleChecker() {
	cfg := health.CheckConfig{Type: health.TypeTCP, Interval: 10 * time.Millisecond, UnhealthyThreshold: 2}
	cfg.Defaults()
	probe := func(ctx context.Context, addr string) error { return errors.New("connection refused") }
	checker := health.NewChecker(cfg, probe, health.Deps{Upstream: "api"})

	t := &target{addr: "10.0.0.7:8000"}
	checker.Add(t, true) // known at start: used until its checks fail

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = checker.Run(ctx); close(done) }()
	for t.healthy.Load() {
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	fmt.Println("healthy:", t.healthy.Load())
	// Output: healthy: false
}
