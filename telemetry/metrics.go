package telemetry

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Build identifies the running binary; it becomes drawbridge_build_info.
type Build struct {
	// Version is the release, e.g. "v0.3.0". Zero means "dev".
	Version string
	// Commit is the VCS revision. Zero means "none".
	Commit string
}

// NewRegistry returns a fresh Prometheus registry (never the global one)
// holding the Go runtime and process collectors and drawbridge_build_info.
// Every package that observes something registers its own metrics on it.
func NewRegistry(b Build) *prometheus.Registry {
	if b.Version == "" {
		b.Version = "dev"
	}
	if b.Commit == "" {
		b.Commit = "none"
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "drawbridge_build_info",
			Help: "Always 1; the labels say which drawbridge build is running.",
			ConstLabels: prometheus.Labels{
				"version": b.Version, "commit": b.Commit, "goversion": runtime.Version(),
			},
		}, func() float64 { return 1 }),
	)
	return reg
}
