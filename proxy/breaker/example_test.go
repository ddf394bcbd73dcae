package breaker_test

import (
	"fmt"
	"time"

	"github.com/drawbridge-proxy/drawbridge/proxy/breaker"
)

type target struct {
	addr  string
	gated bool
}

func (t *target) Address() string    { return t.addr }
func (t *target) SetGated(open bool) { t.gated = open }

// Each attempt asks its target's breaker first and reports how it ended.
// Three connection failures in a row open the breaker and gate the target.
func ExampleSet() {
	cfg := breaker.Config{ConsecutiveFailures: 3, OpenTimeout: time.Minute}
	cfg.Defaults()
	set := breaker.NewSet(cfg, breaker.Deps{Upstream: "api", Gate: true})
	defer set.Close()

	t := &target{addr: "10.0.0.7:8000"}
	for range 3 {
		done, err := set.For(t).Allow()
		if err != nil {
			break
		}
		done.Report(breaker.Connect, 0) // the dial was refused
	}
	_, err := set.For(t).Allow()
	fmt.Println(set.State(t.addr), t.gated, err != nil)
	// Output: open true true
}
