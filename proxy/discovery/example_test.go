package discovery_test

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/drawbridge-proxy/drawbridge/proxy/discovery"
)

// compose answers like Docker's embedded DNS for a service scaled to two.
type compose struct{}

func (compose) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	return []netip.Addr{netip.MustParseAddr("172.18.0.4"), netip.MustParseAddr("172.18.0.3")}, nil
}

// A watcher turns a target name into one target per address.
func ExampleWatcher() {
	cfg := discovery.Config{Interval: time.Hour}
	cfg.Defaults()
	got := make(chan []string, 1)
	w := discovery.New(cfg, []string{"api:8000"}, func(addrs []string) { got <- addrs }, discovery.Deps{Resolver: compose{}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = w.Run(ctx); close(done) }()
	fmt.Println(<-got)
	cancel()
	<-done
	// Output: [172.18.0.3:8000 172.18.0.4:8000]
}
