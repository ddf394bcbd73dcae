package ratelimit

import (
	"math"
	"net/http"

	"github.com/drawbridge-proxy/drawbridge/telemetry/configerr"
)

// Keys a bucket can be chosen by.
const (
	KeyClientIP = "client_ip" // the client address, after trusted_proxies
	KeyIdentity = "identity"  // the verified client identity (SPIFFE ID) of mutual TLS
	KeyHeader   = "header"    // the value of Config.Header
	KeyRoute    = "route"     // one bucket for the whole route
)

// Config is a route's `rate_limit` section.
type Config struct {
	// Rate is the sustained number of requests per second per key.
	// Required (> 0).
	Rate float64 `yaml:"rate"`
	// Burst is how many requests a key may make at once after being idle.
	// Zero means the rate rounded up, at least 1.
	Burst int `yaml:"burst"`
	// Key chooses the bucket: client_ip, identity, header or route. Zero
	// means client_ip.
	Key string `yaml:"key"`
	// Header names the header whose value is the key, with key: header.
	// Requests without it share one bucket.
	Header string `yaml:"header"`
	// MaxKeys bounds the table of buckets; the least recently used key is
	// forgotten past it. Zero means 100000 (about 20 MB at most).
	MaxKeys int `yaml:"max_keys"`
}

// Defaults fills the zero fields that have a default.
func (c *Config) Defaults() {
	if c.Key == "" {
		c.Key = KeyClientIP
	}
	if c.Burst == 0 && c.Rate > 0 {
		c.Burst = max(1, int(math.Ceil(c.Rate)))
	}
	if c.MaxKeys == 0 {
		c.MaxKeys = 100_000
	}
}

// Validate reports every problem at once, each naming its key relative to
// the section.
func (c *Config) Validate() error {
	var errs configerr.List
	if !(c.Rate > 0) || math.IsInf(c.Rate, 0) {
		errs.Add("rate", "must be > 0 requests per second, got %v", c.Rate)
	}
	if c.Burst < 0 {
		errs.Add("burst", "must be >= 0, got %d", c.Burst)
	}
	switch c.Key {
	case KeyClientIP, KeyIdentity, KeyRoute:
		if c.Header != "" {
			errs.Add("header", "only used with key: header")
		}
	case KeyHeader:
		if c.Header == "" || http.CanonicalHeaderKey(c.Header) == "" || !validHeaderName(c.Header) {
			errs.Add("header", "key: header needs a valid header name, got %q", c.Header)
		}
	default:
		errs.Add("key", "unknown key %q (want client_ip, identity, header or route)", c.Key)
	}
	if c.MaxKeys < 0 || c.MaxKeys > 10_000_000 {
		errs.Add("max_keys", "must be between 1 and 10000000, got %d", c.MaxKeys)
	}
	return errs.Err()
}

func validHeaderName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return s != ""
}
