package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/drawbridge-proxy/drawbridge/cmd/drawbridge/internal/config"
	"github.com/drawbridge-proxy/drawbridge/internal/loop"
	"github.com/drawbridge-proxy/drawbridge/telemetry/status"
)

// reloadPoll is how often the config file's content is compared: a
// Compose bind mount sees in-place edits but no directory events.
const reloadPoll = 2 * time.Second

// reloader applies a changed configuration file, on SIGHUP and when the
// file changes: load, validate fully, build, then swap atomically. A bad
// file is refused with every problem logged, and the running configuration
// keeps serving.
type reloader struct {
	gw   *gateway
	path string
	*reloadMetrics

	mu      sync.Mutex // guards the following fields; one reload at a time
	current *config.File
	digest  [32]byte
}

// reloadMetrics say whether the configuration in service is the file's.
type reloadMetrics struct {
	reloads   *prometheus.CounterVec
	lastOK    prometheus.Gauge
	lastWhen  prometheus.Gauge
	lastTried prometheus.Gauge
}

// newReloadMetrics registers the reload metrics; the initial load counts
// as a success, so a gateway without reloads reports 1.
func newReloadMetrics(reg prometheus.Registerer, loadedAt time.Time) (*reloadMetrics, error) {
	m := &reloadMetrics{
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drawbridge_config_reloads_total",
			Help: "Configuration reloads by result (success or failure).",
		}, []string{"result"}),
		lastOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "drawbridge_config_last_reload_successful",
			Help: "1 when the last configuration load or reload succeeded, 0 when it was refused.",
		}),
		lastWhen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "drawbridge_config_last_reload_success_timestamp_seconds",
			Help: "When the configuration in service was loaded, as a Unix time.",
		}),
		lastTried: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "drawbridge_config_last_reload_attempt_timestamp_seconds",
			Help: "When a configuration reload was last attempted, as a Unix time.",
		}),
	}
	for _, c := range []prometheus.Collector{m.reloads, m.lastOK, m.lastWhen, m.lastTried} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering reload metrics: %w", err)
		}
	}
	m.lastOK.Set(1)
	m.lastWhen.Set(float64(loadedAt.Unix()))
	return m, nil
}

func newReloader(gw *gateway, path string, f *config.File) (*reloader, error) {
	r := &reloader{gw: gw, path: path, current: f, reloadMetrics: gw.obs.reloadMetrics}
	if b, err := os.ReadFile(path); err == nil { // #nosec G304 -- the operator names the config file
		r.digest = sha256.Sum256(b)
	}
	return r, nil
}

// run reloads on SIGHUP and when the file's content changes, until ctx ends.
func (r *reloader) run(ctx context.Context) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var events chan fsnotify.Event
	if w, err := fsnotify.NewWatcher(); err == nil {
		defer w.Close()
		// The directory, not the file: editors and Kubernetes replace files.
		if err := w.Add(filepath.Dir(r.path)); err == nil {
			events = w.Events
		}
	}
	t := time.NewTicker(reloadPoll)
	defer t.Stop()
	// A write shows up as several events (truncate, then write): settle
	// for a moment after the last one rather than reload a half-written file.
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	defer settle.Stop()
	for {
		force := false
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			force = true
		case <-t.C:
		case <-settle.C:
		case ev, ok := <-events:
			if !ok {
				events = nil
			} else if filepath.Clean(ev.Name) == filepath.Clean(r.path) {
				settle.Reset(reloadSettle)
			}
			continue
		}
		r.safeReload(ctx, force)
	}
}

// reloadSettle is how long the file must be quiet before a change is read.
const reloadSettle = 250 * time.Millisecond

func (r *reloader) safeReload(ctx context.Context, force bool) {
	_ = loop.Guard(r.gw.log, "configuration reload panicked; the running configuration stays", func() error { return r.reload(ctx, force) })
}

// reload applies the file if its content changed (or force, for SIGHUP).
func (r *reloader) reload(ctx context.Context, force bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, err := os.ReadFile(r.path)
	if err != nil {
		if force {
			return r.refused(fmt.Errorf("reading %s: %w", r.path, err))
		}
		return nil // a file briefly missing while it is replaced
	}
	digest := sha256.Sum256(b)
	if digest == r.digest && !force {
		return nil
	}
	r.digest = digest
	r.lastTried.SetToCurrentTime()
	f, err := config.Parse(r.path, b)
	if err == nil {
		err = r.apply(ctx, f)
	}
	if err != nil {
		return r.refused(err)
	}
	r.current = f
	r.reloads.WithLabelValues("success").Inc()
	r.lastOK.Set(1)
	r.lastWhen.Set(float64(f.LoadedAt.Unix()))
	r.gw.obs.setConfigLoad(status.ConfigLoad{Source: f.Source, At: f.LoadedAt, OK: true})
	r.gw.log.Info("configuration reloaded", "file", r.path)
	return nil
}

func (r *reloader) refused(err error) error {
	r.reloads.WithLabelValues("failure").Inc()
	r.lastOK.Set(0)
	prev := r.gw.obs.configLoad()
	r.gw.obs.setConfigLoad(status.ConfigLoad{Source: prev.Source, At: prev.At, OK: false, Error: err.Error()})
	var cerr *config.Error
	if errors.As(err, &cerr) {
		for _, p := range cerr.Problems {
			r.gw.log.Error("configuration reload refused", "file", r.path, "problem", p.String())
		}
	} else {
		r.gw.log.Error("configuration reload refused", "file", r.path, "error", err)
	}
	r.gw.log.Warn("the running configuration keeps serving", "loaded_at", prev.At)
	return err
}

// apply swaps f in. Sections that wire the process together (pki, admin,
// tracing, audit) change only with a restart, and saying so beats
// half-applying them.
func (r *reloader) apply(ctx context.Context, f *config.File) error {
	cur := r.current
	var errs []error
	for _, s := range []struct {
		key      string
		old, new any
	}{
		{"pki", cur.PKI, f.PKI},
		{"admin", cur.Admin, f.Admin},
		{"tracing", cur.Tracing, f.Tracing},
		{"audit", cur.Audit, f.Audit},
		{"secrets", cur.Secrets, f.Secrets},
	} {
		if !reflect.DeepEqual(s.old, s.new) {
			errs = append(errs, fmt.Errorf("%s: this section changes only with a restart; keep it as it is to reload the rest", s.key))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if r.gw.pki != nil {
		if err := r.gw.pki.tls.Update(ctx, f); err != nil {
			return fmt.Errorf("certificates for the new configuration: %w", err)
		}
	}
	if err := r.gw.proxy.Reload(f.Config); err != nil {
		return err
	}
	if lvl, err := f.Logging.ParsedLevel(); err == nil {
		r.gw.level.Set(lvl)
	}
	r.gw.syncUpstreamChecks()
	return nil
}
