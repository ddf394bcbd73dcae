package proxy_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/drawbridge-proxy/drawbridge/proxy"
)

// discardExporter accepts spans and drops them: the batch processor, span
// building and propagation are measured, the network is not.
type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

// BenchmarkTelemetryOverhead proxies small GETs through the gateway with
// telemetry off, with metrics, and with metrics and tracing (every request
// sampled, spans batched to a discarding exporter). Compare ns/op of the
// sub-benchmarks of one run for the cost of telemetry:
//
//	go test -run '^$' -bench TelemetryOverhead -count 5 ./proxy/
func BenchmarkTelemetryOverhead(b *testing.B) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer backend.Close()
	variants := []struct {
		name string
		deps func() (proxy.Deps, func())
	}{
		{"off", func() (proxy.Deps, func()) { return proxy.Deps{}, func() {} }},
		{"metrics", func() (proxy.Deps, func()) { return proxy.Deps{Registerer: prometheus.NewRegistry()}, func() {} }},
		{"metrics+tracing", func() (proxy.Deps, func()) {
			tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discardExporter{}),
				sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(1))))
			return proxy.Deps{Registerer: prometheus.NewRegistry(), Tracing: trace.TracerProvider(tp)},
				func() { tp.Shutdown(context.Background()) }
		}},
	}
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			deps, done := v.deps()
			defer done()
			t := &testing.T{}
			g := startGatewayWith(t, oneRoute(hostOf(backend)), deps)
			defer g.cancel()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			defer client.CloseIdleConnections()
			cpu0 := cpuTime()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := client.Get(g.url + "/bench")
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
			b.StopTimer()
			// CPU time of the whole process (client, gateway and backend) per
			// request: steadier than wall time on a shared machine.
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestTelemetryOverhead measures what BenchmarkTelemetryOverhead does, but
// interleaves the variants round by round, so that a machine shared with
// other work slows them alike, and logs the median ratios. It runs only
// with DRAWBRIDGE_BENCH=1:
//
//	DRAWBRIDGE_BENCH=1 go test -run TelemetryOverhead -v ./proxy/
func TestTelemetryOverhead(t *testing.T) {
	if os.Getenv("DRAWBRIDGE_BENCH") == "" {
		t.Skip("a measurement, not a check: set DRAWBRIDGE_BENCH=1 to run it")
	}
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer backend.Close()
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discardExporter{}),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(1))))
	defer tp.Shutdown(context.Background())
	names := []string{"off", "metrics", "metrics+tracing"}
	deps := []proxy.Deps{{}, {Registerer: prometheus.NewRegistry()}, {Registerer: prometheus.NewRegistry(), Tracing: tp}}
	urls := make([]string, len(deps))
	for i, d := range deps {
		cfg := oneRoute(hostOf(backend))
		cfg.AccessLog.Disabled = true // the same in every variant; leaves the telemetry in focus
		urls[i] = startGatewayWith(t, cfg, d).url
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer client.CloseIdleConnections()
	const rounds, perRound, workers = 15, 2000, 4
	cpu := make([][]float64, len(deps))
	wall := make([][]float64, len(deps))
	for range rounds {
		for i, url := range urls {
			c0, w0 := cpuTime(), time.Now()
			var wg sync.WaitGroup
			for range workers {
				wg.Go(func() {
					for range perRound / workers {
						resp, err := client.Get(url + "/bench")
						if err != nil {
							t.Error(err)
							return
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
				})
			}
			wg.Wait()
			cpu[i] = append(cpu[i], float64(cpuTime()-c0)/perRound)
			wall[i] = append(wall[i], float64(time.Since(w0))/perRound)
		}
	}
	for i, n := range names {
		t.Logf("%-16s median CPU %6.1f µs/request (%.2fx off), median wall %6.1f µs/request (%.2fx off); throughput ratio %.3f",
			n, median(cpu[i])/1e3, median(cpu[i])/median(cpu[0]), median(wall[i])/1e3, median(wall[i])/median(wall[0]),
			median(wall[0])/median(wall[i]))
	}
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}
