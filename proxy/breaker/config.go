package breaker

import (
	"cmp"
	"fmt"
	"strconv"
	"time"

	"github.com/drawbridge-proxy/drawbridge/telemetry/configerr"
)

// Config shapes the breakers of one upstream (or of one route's view of it).
type Config struct {
	// Disabled turns breakers off: every attempt is allowed. Zero: on.
	Disabled bool `yaml:"disabled"`
	// ConsecutiveFailures opens a target's breaker after this many failed
	// attempts in a row. Zero means 5.
	ConsecutiveFailures uint32 `yaml:"consecutive_failures"`
	// FailureRatio also opens it when at least this share of the attempts
	// finished within Window failed (and there were MinRequests of them).
	// Zero means 0.5.
	FailureRatio float64 `yaml:"failure_ratio"`
	// MinRequests is the volume FailureRatio needs before it applies, so
	// two failures out of three do not trip a quiet target. Zero means 20.
	MinRequests uint32 `yaml:"min_requests"`
	// Window is the rolling window of FailureRatio, kept in ten buckets.
	// Zero means 10s.
	Window time.Duration `yaml:"window"`
	// OpenTimeout is how long an open breaker gates its target before
	// letting trial attempts through. Zero means 5s.
	OpenTimeout time.Duration `yaml:"open_timeout"`
	// HalfOpenRequests is how many trial attempts a half-open breaker lets
	// through; that many successes in a row close it, one failure reopens
	// it. Zero means 1.
	HalfOpenRequests uint32 `yaml:"half_open_requests"`
	// FailureOn lists what counts as a failed attempt: "connect" (the
	// connection could not be opened), "timeout", "reset" (the connection
	// failed after it was opened, before a response head), "5xx", "4xx", or
	// a single status such as 429. Zero means [connect, timeout, reset, 5xx].
	// A client that cancels its request never counts.
	FailureOn []string `yaml:"failure_on"`
}

// DefaultFailureOn is what counts as a failure unless configured.
var DefaultFailureOn = []string{"connect", "timeout", "reset", "5xx"}

// Defaults fills every zero field that has a default.
func (c *Config) Defaults() {
	c.ConsecutiveFailures = cmp.Or(c.ConsecutiveFailures, 5)
	c.FailureRatio = cmp.Or(c.FailureRatio, 0.5)
	c.MinRequests = cmp.Or(c.MinRequests, 20)
	c.Window = cmp.Or(c.Window, 10*time.Second)
	c.OpenTimeout = cmp.Or(c.OpenTimeout, 5*time.Second)
	c.HalfOpenRequests = cmp.Or(c.HalfOpenRequests, 1)
	if len(c.FailureOn) == 0 {
		c.FailureOn = append([]string(nil), DefaultFailureOn...)
	}
}

// Inherit fills every zero field of a route's override from the upstream's
// (already defaulted) configuration. Disabled is taken as written.
func (c *Config) Inherit(from Config) {
	c.ConsecutiveFailures = cmp.Or(c.ConsecutiveFailures, from.ConsecutiveFailures)
	c.FailureRatio = cmp.Or(c.FailureRatio, from.FailureRatio)
	c.MinRequests = cmp.Or(c.MinRequests, from.MinRequests)
	c.Window = cmp.Or(c.Window, from.Window)
	c.OpenTimeout = cmp.Or(c.OpenTimeout, from.OpenTimeout)
	c.HalfOpenRequests = cmp.Or(c.HalfOpenRequests, from.HalfOpenRequests)
	if len(c.FailureOn) == 0 {
		c.FailureOn = append([]string(nil), from.FailureOn...)
	}
	c.Defaults()
}

// Validate reports every problem at once, each starting with its key.
func (c *Config) Validate() error {
	var errs configerr.List
	if c.FailureRatio <= 0 || c.FailureRatio > 1 {
		errs.Add("failure_ratio", "must be > 0 and <= 1, got %g", c.FailureRatio)
	}
	if c.Window <= 0 {
		errs.Add("window", "must be > 0")
	} else if c.Window < 10*time.Millisecond {
		errs.Add("window", "must be at least 10ms, got %s", c.Window)
	}
	if c.OpenTimeout <= 0 {
		errs.Add("open_timeout", "must be > 0")
	}
	for i, f := range c.FailureOn {
		if _, err := parseFailure(f); err != nil {
			errs.Add(fmt.Sprintf("failure_on[%d]", i), "%v", err)
		}
	}
	return errs.Err()
}

// Kind is what became of one attempt.
type Kind int

// Kinds of attempt outcome.
const (
	// Response: a response head arrived; its status decides.
	Response Kind = iota
	// Connect: the connection could not be opened (refused, unreachable).
	Connect
	// Timeout: the attempt timed out (dial, handshake, response head or per-try).
	Timeout
	// Reset: the connection failed after it was opened, before a response head.
	Reset
	// Canceled: the client went away. Never a failure, never a success.
	Canceled
)

// Policy decides which outcomes are failures.
type Policy struct {
	connect, timeout, reset bool
	status                  [600]bool
}

// NewPolicy compiles a FailureOn list (already validated; unknown entries
// are ignored). An empty list means DefaultFailureOn.
func NewPolicy(failureOn []string) Policy {
	if len(failureOn) == 0 {
		failureOn = DefaultFailureOn
	}
	var p Policy
	for _, f := range failureOn {
		fn, err := parseFailure(f)
		if err == nil {
			fn(&p)
		}
	}
	return p
}

// Failed reports whether an attempt that ended as kind (with status, for
// Response) counts as a failure.
func (p *Policy) Failed(kind Kind, status int) bool {
	switch kind {
	case Connect:
		return p.connect
	case Timeout:
		return p.timeout
	case Reset:
		return p.reset
	case Response:
		return status >= 0 && status < len(p.status) && p.status[status]
	}
	return false
}

func parseFailure(f string) (func(*Policy), error) {
	switch f {
	case "connect":
		return func(p *Policy) { p.connect = true }, nil
	case "timeout":
		return func(p *Policy) { p.timeout = true }, nil
	case "reset":
		return func(p *Policy) { p.reset = true }, nil
	case "5xx", "4xx":
		lo := int(f[0]-'0') * 100
		return func(p *Policy) {
			for s := lo; s < lo+100; s++ {
				p.status[s] = true
			}
		}, nil
	}
	n, err := strconv.Atoi(f)
	if err != nil || n < 400 || n > 599 {
		return nil, fmt.Errorf("%q is not connect, timeout, reset, 5xx, 4xx or a status from 400 to 599", f)
	}
	return func(p *Policy) { p.status[n] = true }, nil
}
