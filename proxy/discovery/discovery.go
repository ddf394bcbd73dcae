package discovery

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/drawbridge-proxy/drawbridge/internal/loop"
	"github.com/drawbridge-proxy/drawbridge/telemetry/configerr"
)

// Config says how names are followed.
type Config struct {
	// Disabled dials names as they are, one target per name, resolved by
	// the dialer for each new connection. Zero: names are followed.
	Disabled bool `yaml:"disabled"`
	// Interval between two resolutions of every name. Zero means 5s.
	Interval time.Duration `yaml:"interval"`
	// Timeout bounds one resolution. Zero means 2s.
	Timeout time.Duration `yaml:"timeout"`
	// Network is "ip" (IPv4 and IPv6 addresses), "ip4" or "ip6". Zero means ip.
	Network string `yaml:"network"`
}

// Defaults fills every zero field that has a default.
func (c *Config) Defaults() {
	if c.Interval == 0 {
		c.Interval = 5 * time.Second
	}
	if c.Timeout == 0 {
		c.Timeout = 2 * time.Second
	}
	if c.Network == "" {
		c.Network = "ip"
	}
}

// Validate reports every problem at once, each starting with its key.
func (c *Config) Validate() error {
	var errs configerr.List
	if c.Interval <= 0 {
		errs.Add("interval", "must be > 0")
	}
	if c.Timeout <= 0 {
		errs.Add("timeout", "must be > 0")
	}
	if c.Network != "ip" && c.Network != "ip4" && c.Network != "ip6" {
		errs.Add("network", "%q is not ip, ip4 or ip6", c.Network)
	}
	return errs.Err()
}

// Resolver looks names up; *net.Resolver satisfies it. Tests inject their own.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// HasNames reports whether any of the host:port targets names its host
// rather than giving an IP address.
func HasNames(targets []string) bool {
	for _, t := range targets {
		if host, _, err := net.SplitHostPort(t); err == nil {
			if _, err := netip.ParseAddr(host); err != nil {
				return true
			}
		}
	}
	return false
}

// Deps are what a Watcher is given.
type Deps struct {
	// Resolver looks names up. Nil means net.DefaultResolver.
	Resolver Resolver
	// Logger receives one line per change of the address set and per
	// change between failing and resolving. Nil discards them.
	Logger *slog.Logger
	// Metrics records addresses and failures. Nil records nothing.
	Metrics *Metrics
	// Upstream names the upstream in logs and metrics.
	Upstream string
	// Sources, when set, is called just before each update with the
	// addresses each target resolved to, so the caller can give an address
	// its target's settings (a weight). Nil: not called.
	Sources func(byTarget map[string][]string)
}

// Watcher resolves an upstream's targets and reports the full address set
// whenever it changes.
type Watcher struct {
	cfg     Config
	deps    Deps
	log     *slog.Logger
	targets []string
	update  func(addrs []string)

	// owned by Run's goroutine
	last    map[string][]string // target -> addresses of its last good lookup
	failing map[string]bool
	current []string
}

// New returns a watcher of targets (host:port, validated) that calls update
// with the sorted, de-duplicated set of ip:port addresses after the first
// lookup that yields any and after every change. IP targets are passed
// through unchanged.
func New(cfg Config, targets []string, update func(addrs []string), deps Deps) *Watcher {
	if deps.Resolver == nil {
		deps.Resolver = net.DefaultResolver
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	return &Watcher{
		cfg: cfg, deps: deps, targets: slices.Clone(targets), update: update,
		log:  deps.Logger.With("upstream", deps.Upstream),
		last: map[string][]string{}, failing: map[string]bool{},
	}
}

// Run resolves at once, then every interval, until ctx ends.
func (w *Watcher) Run(ctx context.Context) error {
	resolve := func() {
		_ = loop.Guard(w.log, "service discovery panicked", func() error { w.resolve(ctx); return nil })
	}
	resolve()
	return loop.Every(ctx, w.cfg.Interval, resolve)
}

// resolve looks every target up once and reports the set if it changed.
func (w *Watcher) resolve(ctx context.Context) {
	var all []string
	for _, t := range w.targets {
		addrs, err := w.lookup(ctx, t)
		if ctx.Err() != nil {
			return
		}
		w.note(t, addrs, err)
		if err == nil {
			w.last[t] = addrs
		}
		all = append(all, w.last[t]...)
	}
	slices.Sort(all)
	all = slices.Compact(all)
	if len(all) == 0 || slices.Equal(all, w.current) {
		return
	}
	added, removed := diff(w.current, all)
	w.log.Info("targets changed", "targets", strings.Join(all, ","), "added", strings.Join(added, ","), "removed", strings.Join(removed, ","))
	w.current = all
	if w.deps.Sources != nil {
		w.deps.Sources(maps.Clone(w.last))
	}
	w.update(slices.Clone(all))
}

// lookup returns the ip:port addresses of one target.
func (w *Watcher) lookup(ctx context.Context, target string) ([]string, error) {
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		return nil, err
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return []string{net.JoinHostPort(ip.Unmap().String(), port)}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	ips, err := w.deps.Resolver.LookupNetIP(ctx, w.cfg.Network, host)
	if err != nil {
		return nil, err
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("lookup %s: no addresses", host)
	}
	out := make([]string, 0, len(ips))
	for _, ip := range ips {
		out = append(out, net.JoinHostPort(ip.Unmap().String(), port))
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// note records one lookup's result in metrics, and in the log when the
// name starts or stops failing.
func (w *Watcher) note(target string, addrs []string, err error) {
	if err != nil {
		w.deps.Metrics.failed(w.deps.Upstream, target)
		if !w.failing[target] {
			w.failing[target] = true
			w.log.Warn("service discovery failing; keeping the last good addresses",
				"name", target, "error", err.Error(), "kept", strings.Join(w.last[target], ","))
		}
		return
	}
	w.deps.Metrics.resolved(w.deps.Upstream, target, len(addrs))
	if w.failing[target] {
		w.failing[target] = false
		w.log.Info("service discovery recovered", "name", target)
	}
}

func diff(old, cur []string) (added, removed []string) {
	for _, a := range cur {
		if !slices.Contains(old, a) {
			added = append(added, a)
		}
	}
	for _, a := range old {
		if !slices.Contains(cur, a) {
			removed = append(removed, a)
		}
	}
	return added, removed
}
