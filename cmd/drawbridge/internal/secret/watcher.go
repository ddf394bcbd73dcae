package secret

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/drawbridge-proxy/drawbridge/internal/loop"
	"github.com/drawbridge-proxy/drawbridge/telemetry/audit"
)

// Event is one audited secret access. It never holds the value.
type Event struct {
	Action      string // "secret.read" (first load) or "secret.reload"
	Secret      string // the secret's name
	Source      string // its reference, e.g. file:/run/secrets/ca_passphrase
	Result      string // "ok", "refused" (invalid new value) or "error" (unreadable)
	Reason      string // why not ok
	Fingerprint string // keyed fingerprint of the value now in service
}

// Deps are what a Watcher is given.
type Deps struct {
	// Logger receives rotations and refusals. Nil discards.
	Logger *slog.Logger
	// Audit receives every read and reload. Nil: not audited.
	Audit func(Event)
	// Registerer takes the watcher's metrics. Nil: no metrics.
	Registerer prometheus.Registerer
	// FingerprintKey keys the fingerprints in audit events; keep it stable
	// across restarts (it lives in the state directory) so fingerprints
	// compare. Nil: a random key for this process.
	FingerprintKey []byte
}

// DefaultInterval is how often file secrets are re-read.
const DefaultInterval = 5 * time.Second

// Watcher keeps a set of secrets current.
type Watcher struct {
	interval time.Duration
	deps     Deps
	reloads  *prometheus.CounterVec
	lastOK   *prometheus.GaugeVec

	mu      sync.Mutex // guards secrets
	secrets map[string]*Secret
}

// NewWatcher returns a watcher that re-reads file secrets every interval
// (zero means DefaultInterval) and whenever their directory changes.
func NewWatcher(interval time.Duration, deps Deps) (*Watcher, error) {
	if interval <= 0 {
		interval = DefaultInterval
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.FingerprintKey == nil {
		deps.FingerprintKey, _ = audit.ReadFingerprintKey("") // a random key never fails
	}
	w := &Watcher{interval: interval, deps: deps, secrets: map[string]*Secret{},
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drawbridge_secret_reloads_total",
			Help: "Secret reads and reloads by secret and result (ok, refused, error).",
		}, []string{"secret", "result"}),
		lastOK: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "drawbridge_secret_last_reload_success_timestamp_seconds",
			Help: "When each secret last took a new value, as a Unix time.",
		}, []string{"secret"}),
	}
	if deps.Registerer != nil {
		for _, c := range []prometheus.Collector{w.reloads, w.lastOK} {
			if err := deps.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("registering secret metrics: %w", err)
			}
		}
	}
	return w, nil
}

// Add reads a secret for the first time. Adding the same name and
// reference again returns the secret already held (and keeps its validator). It fails, naming the secret and
// its source, when the reference is malformed or the value is unreadable
// or invalid; nothing is installed then.
func (w *Watcher) Add(name, ref string, validate Validator) (*Secret, error) {
	r, err := ParseRef(ref)
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w", name, err)
	}
	w.mu.Lock()
	if prev, dup := w.secrets[name]; dup {
		w.mu.Unlock()
		if prev.ref == r {
			return prev, nil // the same secret used in two places is read once
		}
		return nil, fmt.Errorf("secret %s is defined twice, as %s and %s", name, prev.ref, r)
	}
	w.mu.Unlock()
	s := &Secret{name: name, ref: r, validate: validate}
	raw, err := s.read()
	if err == nil {
		s.changed(raw)
		err = s.update(raw)
	}
	if err != nil {
		w.record(s, "secret.read", err)
		return nil, err
	}
	if r.Kind == "env" {
		w.deps.Logger.Warn("secret read from an environment variable: for development only; environment variables leak into process listings, crash dumps and child processes; use a file secret", "secret", name, "source", r.String())
	}
	w.record(s, "secret.read", nil)
	w.mu.Lock()
	w.secrets[name] = s
	w.mu.Unlock()
	return s, nil
}

// Check re-reads every file secret once and installs changed, valid values.
func (w *Watcher) Check() {
	w.mu.Lock()
	all := make([]*Secret, 0, len(w.secrets))
	for _, s := range w.secrets {
		if s.ref.Kind == "file" {
			all = append(all, s)
		}
	}
	w.mu.Unlock()
	sort.Slice(all, func(i, j int) bool { return all[i].name < all[j].name })
	for _, s := range all {
		w.refresh(s)
	}
}

func (w *Watcher) refresh(s *Secret) {
	raw, err := s.read()
	if err != nil {
		// A file briefly missing during a rename swap is normal; report
		// it once per distinct state like any other change.
		if s.changed(nil) {
			w.record(s, "secret.reload", err)
		}
		return
	}
	if !s.changed(raw) {
		return
	}
	if err := s.update(raw); !errors.Is(err, errUnchanged) {
		w.record(s, "secret.reload", err)
	}
}

func (w *Watcher) record(s *Secret, action string, err error) {
	ev := Event{Action: action, Secret: s.name, Source: s.ref.String(), Result: "ok"}
	switch {
	case err == nil:
		ev.Fingerprint = audit.Fingerprint(w.deps.FingerprintKey, s.Value())
		w.lastOK.WithLabelValues(s.name).SetToCurrentTime()
		if action == "secret.reload" {
			w.deps.Logger.Info("secret rotated", "secret", s.name, "source", ev.Source, "fingerprint", ev.Fingerprint)
		}
	case errors.Is(err, errUnreadable):
		ev.Result, ev.Reason = "error", err.Error()
	default:
		ev.Result, ev.Reason = "refused", err.Error()
	}
	if err != nil && action == "secret.reload" {
		w.deps.Logger.Error("secret change refused; the previous value stays in service", "secret", s.name, "source", ev.Source, "error", err)
	}
	w.reloads.WithLabelValues(s.name, ev.Result).Inc()
	if w.deps.Audit != nil {
		w.deps.Audit(ev)
	}
}

var (
	errUnreadable = errors.New("unreadable")
	errUnchanged  = errors.New("unchanged")
)

// Run re-reads file secrets every interval and when their directories
// change, until ctx ends.
func (w *Watcher) Run(ctx context.Context) error {
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		w.deps.Logger.Warn("watching secret directories failed; polling only", "error", err)
	} else {
		defer fsw.Close()
		for _, dir := range w.dirs() {
			if err := fsw.Add(dir); err != nil {
				w.deps.Logger.Warn("watching a secret directory failed; polling it", "dir", dir, "error", err)
			}
		}
	}
	var events chan fsnotify.Event
	if fsw != nil {
		events = fsw.Events
	}
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case _, ok := <-events:
			if !ok {
				events = nil
				continue
			}
		}
		w.safeCheck()
	}
}

func (w *Watcher) safeCheck() {
	_ = loop.Guard(w.deps.Logger, "secret check panicked", func() error { w.Check(); return nil })
}

func (w *Watcher) dirs() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, s := range w.secrets {
		if s.ref.Kind != "file" {
			continue
		}
		d := filepath.Dir(s.ref.Path)
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	sort.Strings(out)
	return out
}
