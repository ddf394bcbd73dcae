package proxy

import (
	"cmp"
	"os"
	"strconv"
	"time"

	"github.com/drawbridge-proxy/drawbridge/health"
	"github.com/drawbridge-proxy/drawbridge/proxy/breaker"
	"github.com/drawbridge-proxy/drawbridge/proxy/compress"
	"github.com/drawbridge-proxy/drawbridge/proxy/discovery"
	"github.com/drawbridge-proxy/drawbridge/proxy/ratelimit"
	"github.com/drawbridge-proxy/drawbridge/proxy/redirect"
	"github.com/drawbridge-proxy/drawbridge/proxy/relay"
	"github.com/drawbridge-proxy/drawbridge/proxy/static"
	"github.com/drawbridge-proxy/drawbridge/telemetry/configerr"
)

// Config is the data plane's part of the configuration file: listeners with
// their routes, and the upstreams routes send to.
type Config struct {
	// Listeners by name. The name appears in logs and metrics. Zero: none, and
	// Validate reports that nothing would be served.
	Listeners map[string]ListenerConfig `yaml:"listeners"`
	// Upstreams by name, referred to by routes.
	Upstreams map[string]UpstreamConfig `yaml:"upstreams"`
	// ShutdownGrace bounds how long in-flight requests and upgraded
	// connections may drain after a stop signal. Zero means 30s.
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
	// AccessLog says what each access log line holds.
	AccessLog AccessLogConfig `yaml:"access_log"`
}

// AccessLogConfig shapes the one JSON line written per request.
type AccessLogConfig struct {
	// Disabled turns the access log off. Zero: on.
	Disabled bool `yaml:"disabled"`
	// IncludeQuery logs the query string with the path. Zero: the query is
	// left out, because it often carries tokens.
	IncludeQuery bool `yaml:"include_query"`
	// Headers lists request headers whose values are logged. Zero: none.
	// Authorization, Proxy-Authorization and Cookie are refused.
	Headers []string `yaml:"headers"`
}

// ListenerConfig is one address drawbridge accepts connections on.
type ListenerConfig struct {
	// Name is the map key; filled in by Defaults.
	Name string `yaml:"-"`
	// Address is host:port to bind, e.g. "127.0.0.1:8443" or ":443". Required.
	Address string `yaml:"address"`
	// Protocol is "http", "tcp" (a byte stream relayed to the route's
	// upstream; routes match on TLS SNI only) or "postgres" (tcp that also
	// speaks PostgreSQL's SSLRequest negotiation). Zero means http.
	Protocol string `yaml:"protocol"`
	// HTTP1 picks the HTTP/1.x engine of an http listener: "native"
	// (drawbridge's own strict RFC 9112 engine, proxy/engine) or "std"
	// (net/http's server, the way out for an incompatibility). HTTP/2 is
	// always net/http's. Zero means native, or std when the environment
	// has DRAWBRIDGE_HTTP1=std (how CI runs every test on both engines).
	HTTP1 string `yaml:"http1"`
	// TLS of the listener. Zero: plain text.
	TLS ListenerTLS `yaml:"tls"`
	// Timeouts of the server side; none of them can be turned off.
	Timeouts ServerTimeouts `yaml:"timeouts"`
	// Limits on what a client may send.
	Limits ListenerLimits `yaml:"limits"`
	// UnknownHostStatus answers requests whose Host matches no route: 404 or
	// 421 (Misdirected Request). Zero means 404. Such requests never dial.
	UnknownHostStatus int `yaml:"unknown_host_status"`
	// TrustedProxies are CIDRs (or single IPs) of proxies in front of
	// drawbridge whose X-Forwarded-For is kept and extended. Zero: trust
	// none, so every client-sent forwarding header is replaced.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// StripHeaders are request headers removed before forwarding, on top
	// of DefaultStripHeaders (Client-IP, True-Client-IP, X-Client-IP,
	// X-Cluster-Client-IP, X-Original-URL, X-Rewrite-URL,
	// X-Forwarded-Port, X-Forwarded-Prefix). Names match whatever their
	// case and with '_' for '-'. Zero: the defaults only. Forwarding and
	// identity headers are always removed.
	StripHeaders []string `yaml:"strip_headers"`
	// KeepHeaders exempts names of DefaultStripHeaders, for a listener
	// behind a proxy that sets one of them. Zero: none exempt.
	KeepHeaders []string `yaml:"keep_headers"`
	// SecurityHeaders is a preset of response security headers: "off" or
	// "recommended" (Strict-Transport-Security max-age one year on a TLS
	// listener unless tls.hsts_max_age is set; X-Content-Type-Options:
	// nosniff, Referrer-Policy: strict-origin-when-cross-origin,
	// Content-Security-Policy: frame-ancestors 'self' and X-Frame-Options:
	// SAMEORIGIN, each only when the upstream sent none). Zero means off.
	SecurityHeaders string `yaml:"security_headers"`
	// Routes are matched by host, then the longest path prefix, then method
	// and headers.
	Routes []RouteConfig `yaml:"routes"`
	// RedirectToHTTPS makes a plain-HTTP listener answer every request with
	// 308 to the https URL (see proxy/redirect), except ACME http-01
	// challenges when the TLS provider runs ACME. It then has no routes.
	// Zero (absent): the listener routes.
	RedirectToHTTPS *redirect.Config `yaml:"redirect_to_https"`
}

// ServerTimeouts are the listener's http.Server timeouts.
type ServerTimeouts struct {
	// ReadHeader bounds reading the request head. Zero means 10s.
	ReadHeader time.Duration `yaml:"read_header"`
	// Read bounds reading the whole request, body included. Zero means 60s.
	Read time.Duration `yaml:"read"`
	// Write bounds writing the response of a non-streaming request. Zero
	// means 60s. Server-sent events and upgraded connections are exempt.
	Write time.Duration `yaml:"write"`
	// Idle bounds how long a keep-alive connection waits for its next
	// request; for tcp and postgres, how long a connection may carry no
	// byte in either direction. Zero means 120s for http, 1h for tcp and
	// postgres (database pools keep idle connections).
	Idle time.Duration `yaml:"idle"`
	// Handshake bounds the TLS handshake of every listener with TLS and,
	// for postgres, the SSLRequest negotiation. Zero means 10s.
	Handshake time.Duration `yaml:"handshake"`
	// MaxLifetime closes tcp and postgres connections this old. Zero: no limit.
	MaxLifetime time.Duration `yaml:"max_lifetime"`
}

// ListenerLimits bound what one client can make the listener hold.
type ListenerLimits struct {
	// MaxHeaderBytes bounds the request head; larger gets 431. Zero means 64KiB.
	MaxHeaderBytes ByteSize `yaml:"max_header_bytes"`
	// MaxBodyBytes is the default body limit of the listener's routes;
	// larger gets 413. Zero means 10MiB.
	MaxBodyBytes ByteSize `yaml:"max_body_bytes"`
	// MaxConnections bounds open client connections; more wait in the
	// kernel's accept queue. Zero means 10000.
	MaxConnections int `yaml:"max_connections"`
	// MaxStreamsPerSecond bounds the HTTP/2 streams one connection may
	// open per second; past it a stream gets 429 and the connection a
	// GOAWAY (rapid reset floods). Zero means 1000.
	MaxStreamsPerSecond int `yaml:"max_streams_per_second"`
}

// RouteConfig sends matching requests to an upstream.
type RouteConfig struct {
	// Name appears in logs and metrics. Zero: "<listener>/<index>".
	Name string `yaml:"name"`
	// Match selects requests. Zero matches every request.
	Match MatchConfig `yaml:"match"`
	// StripPrefix removes the matched path prefix before forwarding
	// ("/api/todos" -> "/todos"). Zero: the path is forwarded as is.
	StripPrefix bool `yaml:"strip_prefix"`
	// RewritePrefix replaces the matched path prefix with this one.
	// Zero: no rewrite. Cannot be combined with StripPrefix.
	RewritePrefix string `yaml:"rewrite_prefix"`
	// RequestHeaders edits the request sent upstream.
	RequestHeaders HeaderOps `yaml:"request_headers"`
	// ResponseHeaders edits the response sent to the client.
	ResponseHeaders HeaderOps `yaml:"response_headers"`
	// Upstream names the upstream to forward to. Required.
	Upstream string `yaml:"upstream"`
	// MaxBodyBytes overrides the listener's body limit. Zero: the listener's.
	MaxBodyBytes ByteSize `yaml:"max_body_bytes"`
	// Upgrades lists the Upgrade protocols passed through; any other
	// Upgrade header is dropped. Zero means ["websocket"].
	Upgrades []string `yaml:"upgrades"`
	// Fallback answers when no target of the upstream is available. Zero:
	// 503 with Retry-After.
	Fallback FallbackConfig `yaml:"fallback"`
	// Allow lists the client identities (SPIFFE IDs, a trailing /* matches
	// a path) this route serves, on an http listener with tls.mode mutual;
	// a request from any other identity gets 403. The listener's tls.allow
	// applies as well. Zero: every identity the listener admits.
	Allow []string `yaml:"allow"`
	// Breaker gives the route its own breakers per target of the upstream,
	// so its failures gate the targets for this route only; zero fields
	// inherit the upstream's breaker settings. Zero (absent): the route
	// shares the upstream's breakers.
	Breaker *breaker.Config `yaml:"breaker"`
	// Static makes the route serve files from a directory instead of
	// forwarding (static files and single-page apps; see proxy/static).
	// Upstream, fallback and breaker are then not used. Zero (absent): the
	// route forwards to its upstream.
	Static *static.Config `yaml:"static"`
	// Compression encodes responses with zstd or gzip for clients that
	// accept it (see proxy/compress). Zero (absent): responses pass as
	// they are.
	Compression *compress.Config `yaml:"compression"`
	// RateLimit refuses requests past a rate per key with 429 (see
	// proxy/ratelimit). Zero (absent): no rate limit.
	RateLimit *ratelimit.Config `yaml:"rate_limit"`
	// MaxInFlight caps the route's requests in progress; more get 503.
	// Zero: no cap.
	MaxInFlight int `yaml:"max_in_flight"`
}

// MatchConfig selects requests for a route. Every non-empty field must match.
type MatchConfig struct {
	// Hosts are exact host names or "*.example.com" wildcards (one label).
	// Zero: any host.
	Hosts []string `yaml:"hosts"`
	// PathPrefix matches whole path segments: "/api" matches "/api" and
	// "/api/x", never "/apix". Zero means "/".
	PathPrefix string `yaml:"path_prefix"`
	// Methods, upper case. Zero: any method.
	Methods []string `yaml:"methods"`
	// Headers must be present with exactly these values. Zero: no condition.
	Headers map[string]string `yaml:"headers"`
}

// HeaderOps edits headers: Remove first, then Set and SetSecret.
type HeaderOps struct {
	// Set replaces each header with the given value. Zero: nothing set.
	Set map[string]string `yaml:"set"`
	// SetSecret sets request headers to the value of a secret, given by
	// reference: {X-Api-Key: "file:/run/secrets/api_key"}. The value
	// follows rotations of the file and is never logged. Request headers
	// only. Zero: none.
	SetSecret map[string]string `yaml:"set_secret"`
	// Remove deletes each header. Zero: nothing removed.
	Remove []string `yaml:"remove"`
}

// UpstreamConfig is a named group of targets serving the same thing.
type UpstreamConfig struct {
	// Name is the map key; filled in by Defaults.
	Name string `yaml:"-"`
	// Targets are host:port addresses. Required. In YAML they are written
	// as targets (TargetSpecs).
	Targets []string `yaml:"-"`
	// Weights, when set, holds one weight per target (same order): the
	// target's share of picks relative to the others (90 and 10 send one
	// request in ten to the second). 0 drains a target. Zero (nil): every
	// target weighs 1. In YAML, each target's weight key.
	Weights []int `yaml:"-"`
	// TargetSpecs are the targets as YAML writes them, each "host:port" or
	// {address: host:port, weight: N}; Defaults moves them into Targets
	// and Weights. Go callers set Targets and Weights instead.
	TargetSpecs  []TargetSpec   `yaml:"targets"`
	specProblems configerr.List // bad TargetSpecs entries, for Validate
	// Protocol toward the targets: "http", "https" or "h2c" (HTTP/2
	// without TLS) for http listeners; "tcp", "tls" (TLS originated by
	// drawbridge) or "postgres" (SSLRequest, then TLS) for tcp and postgres
	// listeners. Zero means http.
	Protocol string `yaml:"protocol"`
	// Balance is the picking policy: round_robin, least_request or
	// peak_ewma. Zero means round_robin.
	Balance string `yaml:"balance"`
	// Timeouts of the client side.
	Timeouts UpstreamTimeouts `yaml:"timeouts"`
	// HTTP1 picks the HTTP/1.1 client of an http or https upstream:
	// "native" (drawbridge's synchronous transport, proxy/transport; HTTP/1.1
	// only) or "std" (net/http's Transport, which negotiates HTTP/2 over
	// TLS). h2c upstreams always use std. Zero means native, or std with
	// DRAWBRIDGE_HTTP1=std in the environment.
	HTTP1 string `yaml:"http1"`
	// MaxIdlePerTarget is the keep-alive pool size per target. Zero means 256.
	MaxIdlePerTarget int `yaml:"max_idle_per_target"`
	// Retries says when a failed attempt is tried again.
	Retries RetryConfig `yaml:"retries"`
	// TLS is how targets of an https, tls or postgres upstream are verified.
	TLS UpstreamTLS `yaml:"tls"`
	// Health configures active health checks. Zero: none.
	Health health.CheckConfig `yaml:"health"`
	// Outlier configures passive outlier detection. Zero: on, with defaults.
	Outlier health.OutlierConfig `yaml:"outlier"`
	// Breaker configures the circuit breaker of each target. Zero: on,
	// with defaults.
	Breaker breaker.Config `yaml:"breaker"`
	// Discovery configures how targets given as DNS names are followed.
	// Zero: every name is re-resolved every 5s.
	Discovery discovery.Config `yaml:"discovery"`
	// Optional keeps the upstream out of the gateway's readiness. Zero: the
	// gateway is not ready while the upstream has no available target.
	Optional bool `yaml:"optional"`
}

// UpstreamTimeouts are the transport timeouts toward one upstream.
type UpstreamTimeouts struct {
	// Dial bounds opening a TCP connection. Zero means 2s.
	Dial time.Duration `yaml:"dial"`
	// TLSHandshake bounds the TLS handshake. Zero means 5s.
	TLSHandshake time.Duration `yaml:"tls_handshake"`
	// ResponseHeader bounds the wait for the response head after the
	// request was written. Zero means 30s.
	ResponseHeader time.Duration `yaml:"response_header"`
	// IdleConn closes keep-alive connections idle this long. Zero means 90s.
	IdleConn time.Duration `yaml:"idle_conn"`
}

// RetryConfig bounds retries. A failed attempt is retried only when it is
// safe: the connection failed before any of the request was sent, or the
// method is idempotent and the request has no body.
type RetryConfig struct {
	// Attempts is the total number of tries, the first included. Zero
	// means 2; 1 turns retries off.
	Attempts int `yaml:"attempts"`
	// PerTryTimeout bounds one attempt up to its response head. Zero: only
	// timeouts.response_header applies.
	PerTryTimeout time.Duration `yaml:"per_try_timeout"`
	// OnStatus lists response statuses that count as a failed attempt for
	// idempotent requests, e.g. [502, 503]. Zero: statuses are never retried.
	OnStatus []int `yaml:"on_status"`
	// BackoffBase is the first backoff; each retry doubles it, with full
	// jitter. Zero means 10ms.
	BackoffBase time.Duration `yaml:"backoff_base"`
	// BackoffMax caps the backoff. Zero means 250ms.
	BackoffMax time.Duration `yaml:"backoff_max"`
	// Budget caps retries to a share of recent requests, so retries can
	// never multiply an outage.
	Budget RetryBudgetConfig `yaml:"budget"`
}

// RetryBudgetConfig lets retries be at most Ratio of the requests of the
// last Window, plus MinPerSecond for quiet upstreams (Finagle's retry budget).
type RetryBudgetConfig struct {
	// Ratio of recent requests that may be retried. Zero means 0.2.
	Ratio float64 `yaml:"ratio"`
	// MinPerSecond retries are always allowed, averaged over Window. Zero means 3.
	MinPerSecond float64 `yaml:"min_per_second"`
	// Window is how far back requests and retries are counted. Zero means 10s.
	Window time.Duration `yaml:"window"`
}

// Protocols accepted by listeners and upstreams.
const (
	ProtocolHTTP     = "http"
	ProtocolHTTPS    = "https"
	ProtocolH2C      = "h2c"
	ProtocolTCP      = relay.ProtocolTCP
	ProtocolTLS      = relay.ProtocolTLS
	ProtocolPostgres = relay.ProtocolPostgres
)

// HTTP/1.x engines of an http listener.
const (
	HTTP1Native = "native"
	HTTP1Std    = "std"
)

// defaultHTTP1 is the engine of listeners and upstreams that name none:
// native, unless DRAWBRIDGE_HTTP1=std asks for net/http's everywhere.
func defaultHTTP1() string {
	if os.Getenv("DRAWBRIDGE_HTTP1") == HTTP1Std {
		return HTTP1Std
	}
	return HTTP1Native
}

// isStream reports a protocol whose listeners relay bytes rather than HTTP requests.
func isStream(protocol string) bool { return protocol == ProtocolTCP || protocol == ProtocolPostgres }

// Defaults fills every zero field that has a default, in place, and names
// listeners and upstreams after their keys.
func (c *Config) Defaults() {
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = 30 * time.Second
	}
	for name, l := range c.Listeners {
		l.Name = name
		l.defaults()
		c.Listeners[name] = l
	}
	for name, u := range c.Upstreams {
		u.Name = name
		u.defaults()
		c.Upstreams[name] = u
	}
	for _, l := range c.Listeners {
		for i := range l.Routes {
			if b := l.Routes[i].Breaker; b != nil {
				b.Inherit(c.Upstreams[l.Routes[i].Upstream].Breaker)
			}
		}
	}
}

func (l *ListenerConfig) defaults() {
	l.Protocol = cmp.Or(l.Protocol, ProtocolHTTP)
	if l.Protocol == ProtocolHTTP {
		l.HTTP1 = cmp.Or(l.HTTP1, defaultHTTP1())
	}
	l.TLS.defaults(l.Name)
	l.Timeouts.ReadHeader = cmp.Or(l.Timeouts.ReadHeader, 10*time.Second)
	l.Timeouts.Read = cmp.Or(l.Timeouts.Read, 60*time.Second)
	l.Timeouts.Write = cmp.Or(l.Timeouts.Write, 60*time.Second)
	if isStream(l.Protocol) {
		l.Timeouts.Idle = cmp.Or(l.Timeouts.Idle, time.Hour)
	} else {
		l.Timeouts.Idle = cmp.Or(l.Timeouts.Idle, 120*time.Second)
	}
	l.Timeouts.Handshake = cmp.Or(l.Timeouts.Handshake, 10*time.Second)
	l.Limits.MaxHeaderBytes = cmp.Or(l.Limits.MaxHeaderBytes, 64<<10)
	l.Limits.MaxBodyBytes = cmp.Or(l.Limits.MaxBodyBytes, 10<<20)
	l.Limits.MaxConnections = cmp.Or(l.Limits.MaxConnections, 10000)
	l.Limits.MaxStreamsPerSecond = cmp.Or(l.Limits.MaxStreamsPerSecond, 1000)
	l.UnknownHostStatus = cmp.Or(l.UnknownHostStatus, 404)
	if l.RedirectToHTTPS != nil {
		l.RedirectToHTTPS.Defaults()
	}
	for i := range l.Routes {
		r := &l.Routes[i]
		if r.Name == "" {
			r.Name = l.Name + "/" + strconv.Itoa(i)
		}
		r.Match.PathPrefix = cmp.Or(r.Match.PathPrefix, "/")
		r.MaxBodyBytes = cmp.Or(r.MaxBodyBytes, l.Limits.MaxBodyBytes)
		if r.Upgrades == nil {
			r.Upgrades = []string{"websocket"}
		}
		if r.Static != nil {
			r.Static.Defaults()
		}
		if r.Compression != nil {
			r.Compression.Defaults()
		}
		if r.RateLimit != nil {
			r.RateLimit.Defaults()
		}
	}
}

func (u *UpstreamConfig) defaults() {
	u.takeSpecs()
	u.Protocol = cmp.Or(u.Protocol, ProtocolHTTP)
	u.Balance = cmp.Or(u.Balance, "round_robin")
	u.Timeouts.Dial = cmp.Or(u.Timeouts.Dial, 2*time.Second)
	u.Timeouts.TLSHandshake = cmp.Or(u.Timeouts.TLSHandshake, 5*time.Second)
	u.Timeouts.ResponseHeader = cmp.Or(u.Timeouts.ResponseHeader, 30*time.Second)
	if u.Protocol == ProtocolHTTP || u.Protocol == ProtocolHTTPS {
		u.HTTP1 = cmp.Or(u.HTTP1, defaultHTTP1())
	}
	u.Timeouts.IdleConn = cmp.Or(u.Timeouts.IdleConn, 90*time.Second)
	u.MaxIdlePerTarget = cmp.Or(u.MaxIdlePerTarget, 256)
	u.Retries.Attempts = cmp.Or(u.Retries.Attempts, 2)
	u.Retries.BackoffBase = cmp.Or(u.Retries.BackoffBase, 10*time.Millisecond)
	u.Retries.BackoffMax = cmp.Or(u.Retries.BackoffMax, 250*time.Millisecond)
	u.Retries.Budget.Ratio = cmp.Or(u.Retries.Budget.Ratio, 0.2)
	u.Retries.Budget.MinPerSecond = cmp.Or(u.Retries.Budget.MinPerSecond, 3)
	u.Retries.Budget.Window = cmp.Or(u.Retries.Budget.Window, 10*time.Second)
	u.Health.Defaults()
	u.Outlier.Defaults()
	u.Breaker.Defaults()
	u.Discovery.Defaults()
}
