package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"

	"github.com/drawbridge-proxy/drawbridge/cmd/drawbridge/internal/admin"
	"github.com/drawbridge-proxy/drawbridge/cmd/drawbridge/internal/config"
	"github.com/drawbridge-proxy/drawbridge/proxy"
	"github.com/drawbridge-proxy/drawbridge/telemetry"
	"github.com/drawbridge-proxy/drawbridge/telemetry/audit"
	"github.com/drawbridge-proxy/drawbridge/telemetry/golden"
	"github.com/drawbridge-proxy/drawbridge/telemetry/status"
)

// observability is what the gateway is observed through: the metrics
// registry every package registers on, the tracer provider, the audit log.
type observability struct {
	registry *prometheus.Registry
	tracing  *telemetry.Tracing
	audit    *audit.Log // nil when the audit log is off
	started  time.Time

	reloadMetrics *reloadMetrics
	// golden keeps the status page's golden signals, fed by the proxy's
	// Observer hook.
	golden *golden.Rings

	mu     sync.Mutex        // guards config
	config status.ConfigLoad // the last load or reload, for the status page
	// certs lists the certificates drawbridge holds, for the status page;
	// nil without a pki section.
	certs func() []status.Cert
	// ca says whether the CA answers an enrolling instance, for the status
	// page; nil without a pki section, returns nil on the CA itself.
	ca func() *status.CAContact
}

func newObservability(f *config.File, log *slog.Logger) (*observability, error) {
	build := telemetry.Build{Version: version, Commit: commit}
	o := &observability{
		registry: telemetry.NewRegistry(build),
		started:  time.Now(),
		golden:   golden.New(nil),
		config:   status.ConfigLoad{Source: f.Source, At: f.LoadedAt, OK: true},
	}
	rm, err := newReloadMetrics(o.registry, f.LoadedAt)
	if err != nil {
		return nil, err
	}
	o.reloadMetrics = rm
	tr, err := telemetry.NewTracing(f.Tracing, build)
	if err != nil {
		return nil, err
	}
	o.tracing = tr
	if tr.Provider() != nil {
		// The SDK reports export failures only to its global handler.
		otel.SetErrorHandler(telemetry.OTelErrorHandler(log, time.Minute))
		log.Info("tracing on", "service", f.Tracing.ServiceName)
	}
	if f.Audit.Path != "" {
		a, err := audit.Open(f.Audit, audit.Deps{Logger: log, Metrics: o.registry})
		if err != nil {
			_ = tr.Shutdown(context.Background())
			return nil, err
		}
		o.audit = a
	}
	return o, nil
}

func (o *observability) configLoad() status.ConfigLoad {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.config
}

func (o *observability) setConfigLoad(c status.ConfigLoad) {
	o.mu.Lock()
	o.config = c
	o.mu.Unlock()
}

// close flushes queued spans, for 2s at most (a collector that is down
// must not hold up the exit), and closes the audit log.
func (o *observability) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = o.tracing.Shutdown(ctx)
	_ = o.audit.Close()
}

// mountAdmin adds /metrics, /status and /status.json to the admin listener,
// behind the admin token when one is configured.
func (gw *gateway) mountAdmin(f *config.File) error {
	protect := func(h http.Handler) http.Handler { return h }
	if f.Admin.TokenFile != "" {
		// A watched secret: a rotated token applies at once.
		path, err := filepath.Abs(f.Admin.TokenFile)
		if err != nil {
			return fmt.Errorf("admin.token_file: %w", err)
		}
		tok, err := gw.secrets.Add(filepath.Base(path), "file:"+path, admin.CheckToken)
		if err != nil {
			return fmt.Errorf("admin.token_file: %w", err)
		}
		protect = func(h http.Handler) http.Handler { return admin.RequireCurrentToken(tok.Value, h) }
	}
	metrics := promhttp.HandlerFor(gw.obs.registry, promhttp.HandlerOpts{
		EnableOpenMetrics: true, // exemplars (trace IDs) need OpenMetrics
		Registry:          gw.obs.registry,
		ErrorLog:          slog.NewLogLogger(gw.log.Handler(), slog.LevelWarn),
	})
	page := status.New(gw.snapshot, status.Options{Logger: gw.log})
	gw.admin.Handle("GET /metrics", protect(metrics))
	gw.admin.Handle("GET /status", protect(page.HTML()))
	gw.admin.Handle("GET /status.json", protect(page.JSON()))
	gw.admin.Handle("GET /{$}", http.RedirectHandler("/status", http.StatusFound))
	return nil
}

// snapshot gathers what the status page shows.
func (gw *gateway) snapshot(*http.Request) status.Snapshot {
	rep, ready := gw.health.Ready()
	s := status.Snapshot{
		Generated: time.Now(), Version: version, Started: gw.obs.started, Ready: ready, Config: gw.obs.configLoad(),
	}
	for _, name := range sortedNames(rep.Checks) {
		msg := rep.Checks[name]
		c := status.Check{Name: name, OK: msg == "ok"}
		if !c.OK {
			c.Error = msg
		}
		s.Checks = append(s.Checks, c)
	}
	for _, l := range gw.proxy.Listeners() {
		sl := status.Listener{Name: l.Name, Address: l.Address, Protocol: l.Protocol}
		for _, r := range l.Routes {
			sl.Routes = append(sl.Routes, status.Route{Name: r.Name, Hosts: r.Hosts, PathPrefix: r.PathPrefix, Upstream: r.Upstream})
		}
		s.Listeners = append(s.Listeners, sl)
	}
	for _, u := range gw.proxy.Upstreams() {
		su := status.Upstream{Name: u.Name, Protocol: u.Protocol, Balance: u.Balance}
		for _, t := range u.Targets {
			su.Targets = append(su.Targets, status.Target{
				Address: t.Address, Healthy: t.Healthy, Ejected: t.Ejected, BreakerOpen: t.BreakerOpen,
				Draining: t.Draining, InFlight: t.InFlight, Latency: t.Latency,
				Failures: t.ConsecutiveFailures, LastFailure: t.LastFailure, LastFailureAt: t.LastFailureAt,
			})
		}
		s.Upstreams = append(s.Upstreams, su)
	}
	if gw.obs.certs != nil {
		s.Certs = gw.obs.certs()
	}
	s.Traffic = trafficOf(gw.obs.golden.Snapshot())
	if gw.obs.ca != nil {
		s.CA = gw.obs.ca()
	}
	if gw.obs.audit != nil {
		seq, head := gw.obs.audit.Head()
		s.Audit = &status.AuditState{Path: gw.auditPath, Seq: seq, Head: head}
	}
	return s
}

// goldenObserver feeds every finished request to the rings twice: under
// its route and under the target that answered it.
type goldenObserver struct{ rings *golden.Rings }

func (o goldenObserver) ObserveRequest(r proxy.RequestRecord) {
	if r.Route != "" {
		o.rings.Observe(golden.Route, r.Listener, r.Route, r.Status, r.Duration)
	}
	if r.Target != "" {
		o.rings.Observe(golden.Target, r.Upstream, r.Target, r.Status, r.Duration)
	}
}

// trafficOf converts the rings' summaries for the status page.
func trafficOf(stats []golden.Stats) []status.Traffic {
	out := make([]status.Traffic, 0, len(stats))
	for _, st := range stats {
		t := status.Traffic{Kind: "route", Group: st.Group, Name: st.Name, PointInterval: st.Interval,
			Last1m: window(st.Last1m), Last5m: window(st.Last5m), Points: make([]status.Point, len(st.Points))}
		if st.Kind == golden.Target {
			t.Kind = "target"
		}
		for i, p := range st.Points {
			t.Points[i] = status.Point{Requests: p.Requests, Errors: p.Errors}
		}
		out = append(out, t)
	}
	return out
}

func window(w golden.Window) status.Window {
	return status.Window{Requests: w.Requests, RPS: w.RPS, Success: w.Success, P50: w.P50, P95: w.P95, P99: w.P99}
}

func sortedNames(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
