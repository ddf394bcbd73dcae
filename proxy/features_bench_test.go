//go:build !race

package proxy_test

import (
	"io"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/proxy"
	"github.com/drawbridge-proxy/drawbridge/telemetry"
	"github.com/drawbridge-proxy/drawbridge/telemetry/golden"
)

// BenchmarkFeaturesOverhead proxies keep-alive 64 B GETs over raw sockets
// (as TestAllocsPerProxiedGET does) with the two gateways .ci/bench-http
// compares: features off (access log disabled, tracing exporter none) and
// on (access log on at info, every line written through the log's buffer, tracing to an OTLP
// collector with sample_ratio 0). Both have metrics and the status page's
// golden-signal observer, as drawbridge run wires them. Compare the two:
//
//	go test -run '^$' -bench FeaturesOverhead -count 6 ./proxy/ | benchstat -col /features -
func BenchmarkFeaturesOverhead(b *testing.B) {
	upstream := cannedUpstream(b)
	for _, on := range []bool{false, true} {
		name := "features=off"
		if on {
			name = "features=on"
		}
		b.Run(name, func(b *testing.B) {
			addr := featuresGateway(b, upstream, on)
			c := dialRaw(b, addr)
			for range 100 {
				c.get(b)
			}
			b.ReportAllocs()
			cpu0, n := cpuTime(), 100
			for b.Loop() {
				if n++; n == maxRequestsPerConn {
					// The engine closes a connection after 10000 requests.
					c.c.Close()
					c, n = dialRaw(b, addr), 0
				}
				c.get(b)
			}
			// CPU of the whole process (client, gateway and upstream) per
			// request: steadier than wall time on a shared machine.
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// maxRequestsPerConn is below the engine's default keep-alive request limit.
const maxRequestsPerConn = 9000

// featuresGateway starts a gateway in front of upstream configured as the
// benchmark's variant says, and returns its address.
func featuresGateway(tb testing.TB, upstream string, on bool) string {
	tb.Helper()
	cfg := oneRoute(upstream)
	cfg.AccessLog.Disabled = !on
	l := cfg.Listeners["edge"]
	l.Address = "127.0.0.1:0"
	cfg.Listeners["edge"] = l
	logBuf := telemetry.NewLineBuffer(io.Discard, 64<<10, 200*time.Millisecond)
	tb.Cleanup(func() { logBuf.Close() })
	log, _, err := telemetry.NewLogger(telemetry.LogConfig{Level: "info", Format: telemetry.FormatJSON}, logBuf)
	if err != nil {
		tb.Fatal(err)
	}
	tcfg := telemetry.TracingConfig{Exporter: telemetry.ExporterNone}
	if on {
		zero := 0.0
		tcfg = telemetry.TracingConfig{Exporter: telemetry.ExporterOTLP, Endpoint: "http://127.0.0.1:4318", SampleRatio: &zero}
	}
	tr, err := telemetry.NewTracing(tcfg, telemetry.Build{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { tr.Shutdown(tb.Context()) })
	rings := golden.New(nil)
	srv, err := proxy.New(cfg, proxy.Deps{Logger: log, Registerer: telemetry.NewRegistry(telemetry.Build{}),
		Tracing: tr.Provider(), Observer: goldenObserver{rings}})
	if err != nil {
		tb.Fatal(err)
	}
	startServer(tb, srv)
	return srv.Addr("edge").String()
}

// goldenObserver is cmd/drawbridge's: each request under its route and its target.
type goldenObserver struct{ rings *golden.Rings }

func (o goldenObserver) ObserveRequest(r proxy.RequestRecord) {
	if r.Route != "" {
		o.rings.Observe(golden.Route, r.Listener, r.Route, r.Status, r.Duration)
	}
	if r.Target != "" {
		o.rings.Observe(golden.Target, r.Upstream, r.Target, r.Status, r.Duration)
	}
}
