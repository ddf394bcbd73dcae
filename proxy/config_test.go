package proxy_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/proxy"
)

func TestValidateReportsEveryProblemWithItsPath(t *testing.T) {
	cfg := proxy.Config{
		Listeners: map[string]proxy.ListenerConfig{
			"edge": {
				Address:           "127.0.0.1:99999",
				UnknownHostStatus: 418,
				TrustedProxies:    []string{"10.0.0.0/33"},
				Routes: []proxy.RouteConfig{
					{Upstream: "nope", Match: proxy.MatchConfig{PathPrefix: "api", Methods: []string{"get"}}},
					{Upstream: "api", StripPrefix: true, RewritePrefix: "/v1",
						RequestHeaders: proxy.HeaderOps{Set: map[string]string{"X-Forwarded-For": "1.2.3.4"}}},
					{Upstream: "api", StripPrefix: false},
				},
			},
			"bad name!": {Address: "127.0.0.1:1", Routes: []proxy.RouteConfig{{Upstream: "api"}}},
		},
		Upstreams: map[string]proxy.UpstreamConfig{
			"api": {Targets: []string{"api:8000", "no-port", "api:8000"}, Balance: "random", Protocol: "ftp",
				Retries: proxy.RetryConfig{Attempts: 11, OnStatus: []int{404}}, Timeouts: proxy.UpstreamTimeouts{Dial: -time.Second}},
		},
		AccessLog: proxy.AccessLogConfig{Headers: []string{"authorization"}},
	}
	cfg.Defaults()
	err := cfg.Validate()
	if err == nil {
		t.Fatal("Validate accepted a broken config")
	}
	want := []string{
		"access_log.headers[0]: ",
		"listeners.edge.address: ",
		"listeners.edge.unknown_host_status: ",
		"listeners.edge.trusted_proxies[0]: ",
		"listeners.edge.routes[0].upstream: unknown upstream \"nope\"",
		"listeners.edge.routes[0].match.path_prefix: ",
		"listeners.edge.routes[0].match.methods[0]: ",
		"listeners.edge.routes[1].rewrite_prefix: cannot be combined",
		"listeners.edge.routes[1].request_headers.set: X-Forwarded-For is managed",
		"listeners.edge.routes[2].match: matches the same requests as routes[1]",
		"listeners.bad name!: name must be",
		"upstreams.api.targets[1]: ",
		"upstreams.api.targets[2]: api:8000 is listed twice",
		"upstreams.api.balance: ",
		"upstreams.api.protocol: ",
		"upstreams.api.retries.attempts: ",
		"upstreams.api.retries.on_status[0]: ",
		"upstreams.api.timeouts.dial: ",
	}
	msg := err.Error()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("missing problem %q in:\n%s", w, msg)
		}
	}
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) < len(want) {
		t.Errorf("want at least %d separate problems", len(want))
	}
}

func TestDefaultsAreValid(t *testing.T) {
	cfg := oneRoute("127.0.0.1:1")
	l := cfg.Listeners["edge"]
	l.Address = ":8080"
	cfg.Listeners["edge"] = l
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("a minimal config with defaults is invalid: %v", err)
	}
	l = cfg.Listeners["edge"]
	if l.Timeouts.ReadHeader == 0 || l.Timeouts.Read == 0 || l.Timeouts.Write == 0 || l.Timeouts.Idle == 0 {
		t.Errorf("a server timeout was left at zero: %+v", l.Timeouts)
	}
	if l.Limits.MaxHeaderBytes != 64<<10 {
		t.Errorf("max_header_bytes = %s, want 64KiB", l.Limits.MaxHeaderBytes)
	}
}
