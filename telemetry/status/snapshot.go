package status

import (
	"fmt"
	"time"
)

// Snapshot is everything the status page shows, captured at one moment.
// The caller fills it; this package only renders it.
type Snapshot struct {
	Generated time.Time  `json:"generated"`
	Version   string     `json:"version"`
	Started   time.Time  `json:"started"`
	Ready     bool       `json:"ready"`
	Checks    []Check    `json:"checks"`
	Config    ConfigLoad `json:"config"`
	Listeners []Listener `json:"listeners"`
	Upstreams []Upstream `json:"upstreams"`
	Certs     []Cert     `json:"certificates"`
	// Traffic holds the golden signals of every route and upstream target
	// that served in the last 15 minutes, routes first.
	Traffic []Traffic   `json:"traffic"`
	Audit   *AuditState `json:"audit,omitempty"`
	// CA is set on an instance that enrolls with a CA (an edge replica, a
	// sidecar): whether the CA answers.
	CA *CAContact `json:"ca,omitempty"`
}

// CAContact is how an enrolling instance reaches its CA. Its leaves stay
// valid while the CA is away, so an unreachable CA is a problem to show,
// not a readiness failure.
type CAContact struct {
	URL string `json:"url"`
	// UnreachableSince is zero while the CA answers.
	UnreachableSince time.Time `json:"unreachable_since,omitzero"`
	LastContact      time.Time `json:"last_contact,omitzero"`
	LastError        string    `json:"last_error,omitempty"`
}

// Check is one readiness condition and its verdict.
type Check struct {
	Name  string `json:"name"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// ConfigLoad is the last time configuration was loaded or reloaded.
type ConfigLoad struct {
	Source string    `json:"source"`
	At     time.Time `json:"at"`
	OK     bool      `json:"ok"`
	Error  string    `json:"error,omitempty"`
}

// Listener is one address drawbridge accepts connections on.
type Listener struct {
	Name     string  `json:"name"`
	Address  string  `json:"address"`
	Protocol string  `json:"protocol"`
	Routes   []Route `json:"routes"`
}

// Route sends matching requests to an upstream.
type Route struct {
	Name       string   `json:"name"`
	Hosts      []string `json:"hosts,omitempty"`
	PathPrefix string   `json:"path_prefix"`
	Upstream   string   `json:"upstream"`
}

// Upstream is a named pool of targets.
type Upstream struct {
	Name     string   `json:"name"`
	Protocol string   `json:"protocol"`
	Balance  string   `json:"balance"`
	Targets  []Target `json:"targets"`
}

// Target is one upstream address and its live state.
type Target struct {
	Address     string        `json:"address"`
	Healthy     bool          `json:"healthy"`
	Ejected     bool          `json:"ejected"`
	BreakerOpen bool          `json:"breaker_open"`
	Draining    bool          `json:"draining"`
	InFlight    int64         `json:"in_flight"`
	Latency     time.Duration `json:"latency_ns"`
	// Failures counts attempts that failed since the target last answered
	// well: the proxy's own view, whatever health checks say.
	Failures int64 `json:"consecutive_failures"`
	// LastFailure and LastFailureAt describe the latest failed attempt.
	LastFailure   string    `json:"last_failure,omitempty"`
	LastFailureAt time.Time `json:"last_failure_at,omitzero"`
}

// State is one word for the target's condition, worst first.
func (t Target) State() string {
	switch {
	case !t.Healthy:
		return "down"
	case t.BreakerOpen:
		return "breaker open"
	case t.Ejected:
		return "ejected"
	case t.Draining:
		return "draining"
	case t.Failures > 0:
		return "failing"
	}
	return "up"
}

// OK reports whether the target is up and its last attempt went well.
func (t Target) OK() bool { return t.State() == "up" }

// Available counts the targets of u that the balancer may pick (a failing
// target is still picked until a check or a breaker takes it out).
func (u Upstream) Available() int {
	n := 0
	for _, t := range u.Targets {
		if s := t.State(); s == "up" || s == "failing" {
			n++
		}
	}
	return n
}

// Cert is one certificate drawbridge holds.
type Cert struct {
	// Name says what the certificate is for: "edge server", "intermediate CA".
	Name      string    `json:"name"`
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer,omitempty"`
	NotBefore time.Time `json:"not_before,omitzero"`
	NotAfter  time.Time `json:"not_after"`
	// RenewAt is its renewal point: when drawbridge renews (or rotates) it,
	// or for certificate files when their owner is expected to (a third of
	// their life left, as certbot and certmagic do). Zero: nobody is
	// expected to renew it here (a retiring root, another CA's root).
	RenewAt time.Time `json:"renew_at,omitzero"`
	// CheckInterval is how often renewals are checked: the next chance to
	// renew is at most this far away. Zero: one minute.
	CheckInterval time.Duration `json:"check_interval_ns,omitempty"`
}

// Problem says what is wrong with c at now, or "" when nothing is. A
// certificate is a problem when it is not valid now, when it expires before
// the next check could renew it, or when it is past its renewal point by
// more than two checks (one check may fall just before the point, a second
// may retry) and was not renewed. A short lifetime alone is no problem.
func (c Cert) Problem(now time.Time) string {
	check := c.CheckInterval
	if check <= 0 {
		check = time.Minute
	}
	left := c.NotAfter.Sub(now)
	switch {
	case now.Before(c.NotBefore):
		return fmt.Sprintf("certificate %s is not valid yet (valid from %s)", c.Name, c.NotBefore.UTC().Format(time.RFC3339))
	case left <= 0:
		return fmt.Sprintf("certificate %s expired %s", c.Name, relative(left))
	case left < check:
		return fmt.Sprintf("certificate %s expires %s, before the next renewal check", c.Name, relative(left))
	case !c.RenewAt.IsZero() && now.After(c.RenewAt.Add(2*check)):
		return fmt.Sprintf("certificate %s was due for renewal %s and was not renewed; it expires %s",
			c.Name, relative(c.RenewAt.Sub(now)), relative(left))
	}
	return ""
}

// Unusable reports whether c cannot serve now or will not by the next
// check: what fails readiness. A renewal that is overdue alone does not;
// the certificate still serves while it is retried.
func (c Cert) Unusable(now time.Time) bool {
	check := c.CheckInterval
	if check <= 0 {
		check = time.Minute
	}
	return now.Before(c.NotBefore) || c.NotAfter.Sub(now) < check
}

// AuditState is where the audit chain stands.
type AuditState struct {
	Path string `json:"path"`
	Seq  uint64 `json:"seq"`
	Head string `json:"head"`
}

// Problems lists what is wrong, for the banner at the top of the page.
func (s Snapshot) Problems() []string {
	var out []string
	if !s.Ready {
		out = append(out, "not ready")
	}
	if !s.Config.OK {
		out = append(out, "the last configuration load failed")
	}
	for _, u := range s.Upstreams {
		for _, t := range u.Targets {
			if !t.OK() {
				out = append(out, fmt.Sprintf("%s target %s is %s", u.Name, t.Address, t.State()))
			}
		}
		if len(u.Targets) > 0 && u.Available() == 0 {
			out = append(out, fmt.Sprintf("upstream %s has no available target", u.Name))
		}
	}
	if s.CA != nil && !s.CA.UnreachableSince.IsZero() {
		out = append(out, "CA unreachable since "+s.CA.UnreachableSince.UTC().Format(time.RFC3339)+
			" (certificates are kept until they expire; renewals retry)")
	}
	for _, c := range s.Certs {
		if p := c.Problem(s.Generated); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Traffic is the golden signals of one route or upstream target.
type Traffic struct {
	Kind  string `json:"kind"`  // "route" or "target"
	Group string `json:"group"` // the listener of a route, the upstream of a target
	Name  string `json:"name"`  // the route, or the target's address
	// Last1m and Last5m summarize the last 1 and 5 minutes.
	Last1m Window `json:"last_1m"`
	Last5m Window `json:"last_5m"`
	// Points are the last 15 minutes in PointInterval buckets, oldest first;
	// the last one is still filling.
	Points        []Point       `json:"points"`
	PointInterval time.Duration `json:"point_interval_ns"`
}

// Window is a stretch of traffic.
type Window struct {
	Requests int64   `json:"requests"`
	RPS      float64 `json:"rps"`
	// Success is the share of requests not answered 5xx; 1 without requests.
	Success float64       `json:"success_ratio"`
	P50     time.Duration `json:"p50_ns"`
	P95     time.Duration `json:"p95_ns"`
	P99     time.Duration `json:"p99_ns"`
}

// Point is one bucket of a sparkline.
type Point struct {
	Requests uint32 `json:"requests"`
	Errors   uint32 `json:"errors"` // 5xx
}

// Label is how the page and the status command name t: "edge/api".
func (t Traffic) Label() string {
	if t.Name == "" {
		return t.Group
	}
	return t.Group + "/" + t.Name
}

// Routes and Targets split Traffic by kind.
func (s Snapshot) Routes() []Traffic  { return s.trafficOf("route") }
func (s Snapshot) Targets() []Traffic { return s.trafficOf("target") }

func (s Snapshot) trafficOf(kind string) []Traffic {
	var out []Traffic
	for _, t := range s.Traffic {
		if t.Kind == kind {
			out = append(out, t)
		}
	}
	return out
}
