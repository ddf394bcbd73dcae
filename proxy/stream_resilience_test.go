package proxy

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
	"github.com/drawbridge-proxy/drawbridge/proxy/breaker"
)

// Relayed connections go through the same breakers: dials to a dead tcp
// target trip its breaker after consecutive_failures, and while it is open
// connections go to the live target only, without dialling the dead one.
func TestStreamDialsTripBreaker(t *testing.T) {
	leakCheck(t)
	dead := startBackend(t, "dead", "127.0.0.1:0", nil)
	dead.kill()
	live := tcpGreeter(t, "hello")
	up := fastUpstream(dead.addr, live)
	up.Protocol = ProtocolTCP
	up.Breaker = breaker.Config{ConsecutiveFailures: 2, OpenTimeout: 10 * time.Second}
	up.Outlier.Disabled = true
	gw := startGatewayProtocol(t, ProtocolTCP, map[string]UpstreamConfig{"db": up}, []RouteConfig{{Upstream: "db"}}, nil)
	addr := gw.url[len("http://"):]
	for i := range 10 {
		if got := dialAndRead(t, addr); got != "hello" {
			t.Fatalf("connection %d read %q, want hello (connect failures move on to the live target)", i, got)
		}
	}
	if s := gw.metric(t, "drawbridge_breaker_state", map[string]string{"upstream": "db", "target": dead.addr}); s != 2 {
		t.Errorf("dead target's breaker state %v, want 2 (open)", s)
	}
	if !gw.target("db", dead.addr).Gated() {
		t.Error("dead target not gated")
	}
	retries := gw.metric(t, "drawbridge_upstream_retries_total", map[string]string{"upstream": "db"})
	if retries < 1 || retries > 2 {
		t.Errorf("%v retried dials, want 1 or 2: the breaker stops dials to the dead target after 2 failures", retries)
	}
}

// tcpGreeter writes greeting on every connection and closes it.
func tcpGreeter(t *testing.T, greeting string) string {
	t.Helper()
	return drawtest.ServeTCP(t, func(c net.Conn) { _, _ = io.WriteString(c, greeting) })
}

func dialAndRead(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	_, _ = io.Copy(&b, c)
	return b.String()
}
