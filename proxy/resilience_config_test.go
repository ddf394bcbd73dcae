package proxy

import (
	"strings"
	"testing"

	"github.com/drawbridge-proxy/drawbridge/health"
)

// Health checks, breakers and fallbacks are refused where they cannot work,
// each problem named by its key.
func TestResilienceConfigProblems(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(c *Config)
		wantKey string
	}{
		{"http check on a tcp upstream", func(c *Config) {
			c.Upstreams["db"] = UpstreamConfig{Targets: []string{"db:5432"}, Protocol: ProtocolTCP, Health: health.CheckConfig{Type: health.TypeHTTP}}
		}, "upstreams.db.health.type: http checks need"},
		{"postgres check on an http upstream", func(c *Config) {
			u := c.Upstreams["api"]
			u.Health.Type = health.TypePostgres
			c.Upstreams["api"] = u
		}, "upstreams.api.health.type: postgres checks need"},
		{"tls check on an http upstream", func(c *Config) {
			u := c.Upstreams["api"]
			u.Health.Type = health.TypeTLS
			c.Upstreams["api"] = u
		}, "upstreams.api.health.type: the targets of a http upstream"},
		{"check keys without a type", func(c *Config) {
			u := c.Upstreams["api"]
			u.Health.Path = "/healthz"
			c.Upstreams["api"] = u
		}, "upstreams.api.health.type: is required"},
		{"fallback to itself", func(c *Config) {
			c.Listeners["edge"].Routes[0].Fallback = FallbackConfig{Upstream: "api"}
		}, "listeners.edge.routes[0].fallback.upstream: is the route's own upstream"},
		{"fallback body without status", func(c *Config) {
			c.Listeners["edge"].Routes[0].Fallback = FallbackConfig{Body: "down"}
		}, "listeners.edge.routes[0].fallback.status: is required"},
		{"fallback status out of range", func(c *Config) {
			c.Listeners["edge"].Routes[0].Fallback = FallbackConfig{Status: 42}
		}, "listeners.edge.routes[0].fallback.status: must be between"},
		{"fallback to an unknown upstream", func(c *Config) {
			c.Listeners["edge"].Routes[0].Fallback = FallbackConfig{Upstream: "nope"}
		}, `listeners.edge.routes[0].fallback.upstream: unknown upstream "nope"`},
		{"budget ratio", func(c *Config) {
			u := c.Upstreams["api"]
			u.Retries.Budget.Ratio = 1.5
			c.Upstreams["api"] = u
		}, "upstreams.api.retries.budget.ratio: must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{
				Listeners: map[string]ListenerConfig{"edge": {Address: "127.0.0.1:0", Routes: []RouteConfig{{Upstream: "api"}}}},
				Upstreams: map[string]UpstreamConfig{"api": {Targets: []string{"127.0.0.1:9"}}},
			}
			tt.edit(&c)
			c.Defaults()
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.wantKey) {
				t.Errorf("Validate() = %v, want a problem %q", err, tt.wantKey)
			}
		})
	}
}
