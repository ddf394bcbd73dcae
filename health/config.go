package health

import (
	"cmp"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/drawbridge-proxy/drawbridge/telemetry/configerr"
)

// Check types.
const (
	TypeHTTP = "http" // a request through the upstream's own transport
	TypeTCP  = "tcp"  // a TCP connect
	TypeTLS  = "tls"  // a TCP connect and a TLS handshake

	// TypePostgres sends PostgreSQL's SSLRequest and wants the server's
	// one-byte answer; when it accepts TLS, the handshake must succeed too.
	TypePostgres = "postgres"
)

// CheckConfig configures active health checks of an upstream's targets.
type CheckConfig struct {
	// Type is the kind of check: "http", "tcp", "tls" or "postgres". Zero: no active
	// checks; a target is healthy unless passive detection or its breaker
	// says otherwise.
	Type string `yaml:"type"`
	// Path of http checks. Zero means "/".
	Path string `yaml:"path"`
	// Method of http checks. Zero means GET.
	Method string `yaml:"method"`
	// Host header of http checks. Zero: the target's address.
	Host string `yaml:"host"`
	// Headers added to http checks. Zero: none.
	Headers map[string]string `yaml:"headers"`
	// ExpectStatus is the range of statuses that pass an http check:
	// "200-399", "2xx" or a single "204". Zero means "200-399".
	ExpectStatus string `yaml:"expect_status"`
	// ExpectBody must occur in the first 64 KiB of the body. Zero: any body.
	ExpectBody string `yaml:"expect_body"`
	// Interval between checks of a healthy target. Zero means 5s.
	Interval time.Duration `yaml:"interval"`
	// UnhealthyInterval is the interval while a target is unhealthy or
	// waiting to join, so it comes back quickly. Zero means 1s, or Interval
	// if that is shorter.
	UnhealthyInterval time.Duration `yaml:"unhealthy_interval"`
	// Timeout bounds one check. Zero means 2s.
	Timeout time.Duration `yaml:"timeout"`
	// HealthyThreshold is how many checks in a row must pass to mark a
	// target healthy (rise). Zero means 2.
	HealthyThreshold int `yaml:"healthy_threshold"`
	// UnhealthyThreshold is how many checks in a row must fail to mark a
	// target unhealthy (fall). Zero means 3.
	UnhealthyThreshold int `yaml:"unhealthy_threshold"`
	// Jitter is the largest random delay added to each interval, so the
	// checks of many targets do not align. Zero means a tenth of Interval.
	Jitter time.Duration `yaml:"jitter"`
}

// Enabled reports whether active checks are configured.
func (c *CheckConfig) Enabled() bool { return c.Type != "" }

// Defaults fills every zero field that has a default.
func (c *CheckConfig) Defaults() {
	c.Path = cmp.Or(c.Path, "/")
	c.Method = cmp.Or(c.Method, http.MethodGet)
	c.ExpectStatus = cmp.Or(c.ExpectStatus, "200-399")
	c.Interval = cmp.Or(c.Interval, 5*time.Second)
	c.Timeout = cmp.Or(c.Timeout, 2*time.Second)
	c.HealthyThreshold = cmp.Or(c.HealthyThreshold, 2)
	c.UnhealthyThreshold = cmp.Or(c.UnhealthyThreshold, 3)
	if c.Interval > 0 { // a bad interval is reported once, not again through these
		c.UnhealthyInterval = cmp.Or(c.UnhealthyInterval, min(time.Second, c.Interval))
		c.Jitter = cmp.Or(c.Jitter, c.Interval/10)
	} else {
		c.UnhealthyInterval = cmp.Or(c.UnhealthyInterval, time.Second)
	}
}

// Validate reports every problem at once, each starting with its key.
func (c *CheckConfig) Validate() error {
	var errs configerr.List
	switch c.Type {
	case "":
		if c.Path != "/" || c.Host != "" || len(c.Headers) > 0 || c.ExpectBody != "" {
			errs.Add("type", "is required: http check keys are set but no check type (want http)")
		}
	case TypeHTTP, TypeTCP, TypeTLS, TypePostgres:
	default:
		errs.Add("type", "unknown check type %q (want http, tcp, tls or postgres)", c.Type)
	}
	if !strings.HasPrefix(c.Path, "/") || strings.ContainsAny(c.Path, " \r\n\x00#") {
		errs.Add("path", "%q must be an absolute path without spaces or a fragment", c.Path)
	}
	if c.Method != strings.ToUpper(c.Method) || strings.ContainsAny(c.Method, " \r\n") {
		errs.Add("method", "%q is not an upper-case HTTP method", c.Method)
	}
	if strings.ContainsAny(c.Host, " /\r\n\x00@") {
		errs.Add("host", "%q is not a host name", c.Host)
	}
	for _, name := range slices.Sorted(maps.Keys(c.Headers)) {
		if v := c.Headers[name]; name == "" || strings.ContainsAny(name, " :\r\n\x00") || strings.ContainsAny(v, "\r\n\x00") {
			errs.Add("headers", "%q is not a valid header", name)
		}
	}
	if _, _, err := ParseStatusRange(c.ExpectStatus); err != nil {
		errs.Add("expect_status", "%v", err)
	}
	for _, d := range []struct {
		key string
		val time.Duration
	}{{"interval", c.Interval}, {"unhealthy_interval", c.UnhealthyInterval}, {"timeout", c.Timeout}} {
		if d.val <= 0 {
			errs.Add(d.key, "must be > 0")
		}
	}
	if c.Jitter < 0 || (c.Interval > 0 && c.Jitter >= c.Interval) {
		errs.Add("jitter", "must be >= 0 and shorter than interval, got %s", c.Jitter)
	}
	if c.HealthyThreshold < 1 || c.HealthyThreshold > 100 {
		errs.Add("healthy_threshold", "must be between 1 and 100, got %d", c.HealthyThreshold)
	}
	if c.UnhealthyThreshold < 1 || c.UnhealthyThreshold > 100 {
		errs.Add("unhealthy_threshold", "must be between 1 and 100, got %d", c.UnhealthyThreshold)
	}
	return errs.Err()
}

// ParseStatusRange reads "200-399", "2xx" or "204" as an inclusive range.
func ParseStatusRange(s string) (lo, hi int, err error) {
	bad := fmt.Errorf("%q is not a status range such as 200-399, 2xx or 204", s)
	if len(s) == 3 && strings.HasSuffix(s, "xx") && s[0] >= '1' && s[0] <= '5' {
		lo = int(s[0]-'0') * 100
		return lo, lo + 99, nil
	}
	a, b, isRange := strings.Cut(s, "-")
	if lo, err = strconv.Atoi(a); err != nil {
		return 0, 0, bad
	}
	hi = lo
	if isRange {
		if hi, err = strconv.Atoi(b); err != nil {
			return 0, 0, bad
		}
	}
	if lo < 100 || hi > 599 || lo > hi {
		return 0, 0, bad
	}
	return lo, hi, nil
}

// OutlierConfig configures passive outlier detection: targets whose real
// traffic keeps failing are ejected for a while.
type OutlierConfig struct {
	// Disabled turns outlier detection off. Zero: on.
	Disabled bool `yaml:"disabled"`
	// ConsecutiveFailures ejects a target after this many failed attempts
	// in a row (what fails is breaker.failure_on). Zero means 5.
	ConsecutiveFailures int `yaml:"consecutive_failures"`
	// BaseEjectionTime is the first ejection's length; each ejection that
	// follows a failed probation doubles it. Zero means 30s.
	BaseEjectionTime time.Duration `yaml:"base_ejection_time"`
	// MaxEjectionTime caps the ejection time. Zero means 5m.
	MaxEjectionTime time.Duration `yaml:"max_ejection_time"`
	// MaxEjectedPercent bounds the share of an upstream's targets that may
	// be ejected at once, rounded down: an upstream with one target never
	// ejects it (its breaker answers for it). Zero means 50.
	MaxEjectedPercent int `yaml:"max_ejected_percent"`
}

// Defaults fills every zero field that has a default.
func (c *OutlierConfig) Defaults() {
	c.ConsecutiveFailures = cmp.Or(c.ConsecutiveFailures, 5)
	c.BaseEjectionTime = cmp.Or(c.BaseEjectionTime, 30*time.Second)
	c.MaxEjectionTime = cmp.Or(c.MaxEjectionTime, 5*time.Minute)
	c.MaxEjectedPercent = cmp.Or(c.MaxEjectedPercent, 50)
}

// Validate reports every problem at once, each starting with its key.
func (c *OutlierConfig) Validate() error {
	var errs configerr.List
	if c.ConsecutiveFailures < 1 {
		errs.Add("consecutive_failures", "must be >= 1, got %d", c.ConsecutiveFailures)
	}
	if c.BaseEjectionTime <= 0 {
		errs.Add("base_ejection_time", "must be > 0")
	}
	if c.MaxEjectionTime < c.BaseEjectionTime {
		errs.Add("max_ejection_time", "must be >= base_ejection_time (%s)", c.BaseEjectionTime)
	}
	if c.MaxEjectedPercent < 1 || c.MaxEjectedPercent > 100 {
		errs.Add("max_ejected_percent", "must be between 1 and 100, got %d", c.MaxEjectedPercent)
	}
	return errs.Err()
}
