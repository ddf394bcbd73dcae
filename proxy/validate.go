package proxy

import (
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/drawbridge-proxy/drawbridge/health"
	"github.com/drawbridge-proxy/drawbridge/proxy/balancer"
	"github.com/drawbridge-proxy/drawbridge/telemetry/configerr"
)

// Validate reports every problem in c at once, each naming its key path
// (e.g. "upstreams.api.targets[1]: ..."). Call it after Defaults. No
// listener at all is valid here: whether a configuration must serve
// something is up to the command that loads it.
func (c *Config) Validate() error {
	var p configerr.List
	if c.ShutdownGrace < 0 {
		p.Add("shutdown_grace", "must be >= 0, got %s", c.ShutdownGrace)
	}
	for i, h := range c.AccessLog.Headers {
		switch http.CanonicalHeaderKey(h) {
		case "Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie":
			p.Add(fmt.Sprintf("access_log.headers[%d]", i), "%s carries credentials and is never logged; remove it", h)
		}
	}
	addrs := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(c.Listeners)) {
		l := c.Listeners[name]
		path := "listeners." + name
		if !validName(name) {
			p.Add(path, "name must be letters, digits, - or _ (it becomes a metric label)")
		}
		if other, dup := addrs[l.Address]; dup && l.Address != "" && !strings.HasSuffix(l.Address, ":0") {
			p.Add(path+".address", "%s is also used by listener %q", l.Address, other)
		}
		addrs[l.Address] = name
		l.validate(path, c.Upstreams, &p)
	}
	for _, name := range slices.Sorted(maps.Keys(c.Upstreams)) {
		u := c.Upstreams[name]
		if !validName(name) {
			p.Add("upstreams."+name, "name must be letters, digits, - or _ (it becomes a metric label)")
		}
		u.validate("upstreams."+name, &p)
	}
	return p.Err()
}

func (l *ListenerConfig) validate(path string, ups map[string]UpstreamConfig, p *configerr.List) {
	if err := checkHostPort(l.Address, true); err != nil {
		p.Add(path+".address", "%v", err)
	}
	switch l.Protocol {
	case ProtocolHTTP, ProtocolTCP, ProtocolPostgres:
	default:
		p.Add(path+".protocol", "unknown protocol %q (want http, tcp or postgres)", l.Protocol)
	}
	switch {
	case l.Protocol != ProtocolHTTP && l.HTTP1 != "":
		p.Add(path+".http1", "only http listeners have an HTTP/1 engine")
	case l.Protocol == ProtocolHTTP && l.HTTP1 != HTTP1Native && l.HTTP1 != HTTP1Std:
		p.Add(path+".http1", "unknown engine %q (want native or std)", l.HTTP1)
	}
	l.TLS.validate(path+".tls", l.Protocol, p)
	if l.Protocol == ProtocolHTTP && l.TLS.Mode == TLSNone && l.TLS.HSTSMaxAge > 0 {
		p.Add(path+".tls.hsts_max_age", "HSTS needs TLS on the listener")
	}
	if l.Timeouts.MaxLifetime < 0 {
		p.Add(path+".timeouts.max_lifetime", "must be >= 0")
	}
	for _, d := range []struct {
		key string
		val int64
	}{
		{"timeouts.read_header", int64(l.Timeouts.ReadHeader)}, {"timeouts.read", int64(l.Timeouts.Read)},
		{"timeouts.write", int64(l.Timeouts.Write)}, {"timeouts.idle", int64(l.Timeouts.Idle)},
		{"timeouts.handshake", int64(l.Timeouts.Handshake)},
		{"limits.max_header_bytes", int64(l.Limits.MaxHeaderBytes)}, {"limits.max_body_bytes", int64(l.Limits.MaxBodyBytes)},
		{"limits.max_connections", int64(l.Limits.MaxConnections)},
		{"limits.max_streams_per_second", int64(l.Limits.MaxStreamsPerSecond)},
	} {
		if d.val <= 0 {
			p.Add(path+"."+d.key, "must be > 0")
		}
	}
	if l.UnknownHostStatus != 404 && l.UnknownHostStatus != 421 {
		p.Add(path+".unknown_host_status", "must be 404 or 421, got %d", l.UnknownHostStatus)
	}
	for i, cidr := range l.TrustedProxies {
		if _, err := parsePrefix(cidr); err != nil {
			p.Add(fmt.Sprintf("%s.trusted_proxies[%d]", path, i), "%v", err)
		}
	}
	validateStripHeaders(path, l, p)
	switch l.SecurityHeaders {
	case "", SecurityHeadersOff, SecurityHeadersRecommended:
	default:
		p.Add(path+".security_headers", "must be off or recommended, got %q", l.SecurityHeaders)
	}
	if len(l.Routes) == 0 && l.RedirectToHTTPS == nil {
		p.Add(path+".routes", "at least one route is required")
	}
	l.validateRedirect(path, p)
	seen := map[string]int{}
	for i := range l.Routes {
		r := &l.Routes[i]
		rpath := fmt.Sprintf("%s.routes[%d]", path, i)
		r.validate(rpath, ups, p)
		r.validateFor(l.Protocol, rpath, ups, p)
		r.validateEdge(l, rpath, p)
		if len(r.Allow) > 0 {
			checkAllow(rpath+".allow", r.Allow, p)
			if l.Protocol != ProtocolHTTP || l.TLS.Mode != TLSMutual {
				p.Add(rpath+".allow", "identities can only be checked on an http listener with tls.mode: mutual (tcp and postgres listeners use tls.allow)")
			}
		}
		key := r.matchKey()
		if j, dup := seen[key]; dup {
			p.Add(rpath+".match", "matches the same requests as routes[%d]; the second could never be used", j)
		}
		seen[key] = i
	}
}

func (r *RouteConfig) validate(path string, ups map[string]UpstreamConfig, p *configerr.List) {
	if r.Static != nil {
		r.validateStatic(path, p)
	} else if r.Upstream == "" {
		p.Add(path+".upstream", "is required")
	} else if _, ok := ups[r.Upstream]; !ok {
		p.Add(path+".upstream", "unknown upstream %q (defined: %s)", r.Upstream, strings.Join(slices.Sorted(maps.Keys(ups)), ", "))
	}
	for i, h := range r.Match.Hosts {
		if err := checkHostPattern(h); err != nil {
			p.Add(fmt.Sprintf("%s.match.hosts[%d]", path, i), "%v", err)
		}
	}
	if err := checkPathPrefix(r.Match.PathPrefix); err != nil {
		p.Add(path+".match.path_prefix", "%v", err)
	}
	for i, m := range r.Match.Methods {
		if !isToken(m) || strings.ToUpper(m) != m {
			p.Add(fmt.Sprintf("%s.match.methods[%d]", path, i), "%q is not an upper-case HTTP method", m)
		}
	}
	for _, h := range slices.Sorted(maps.Keys(r.Match.Headers)) {
		if !isToken(h) {
			p.Add(path+".match.headers", "%q is not a valid header name", h)
		}
	}
	if r.StripPrefix && r.RewritePrefix != "" {
		p.Add(path+".rewrite_prefix", "cannot be combined with strip_prefix; use one")
	}
	if r.RewritePrefix != "" {
		if err := checkPathPrefix(r.RewritePrefix); err != nil {
			p.Add(path+".rewrite_prefix", "%v", err)
		}
	}
	r.RequestHeaders.validate(path+".request_headers", p)
	r.ResponseHeaders.validate(path+".response_headers", p)
	if len(r.ResponseHeaders.SetSecret) > 0 {
		p.Add(path+".response_headers.set_secret", "secrets are only sent upstream; a response header would hand them to every client")
	}
	if r.MaxBodyBytes <= 0 {
		p.Add(path+".max_body_bytes", "must be > 0")
	}
	for i, u := range r.Upgrades {
		if !isToken(u) {
			p.Add(fmt.Sprintf("%s.upgrades[%d]", path, i), "%q is not a valid protocol token", u)
		}
	}
	r.Fallback.validate(path+".fallback", r.Upstream, ups, p)
	if r.Breaker != nil {
		p.Nest(path+".breaker", r.Breaker.Validate())
	}
}

// validateFor checks that a route uses only what its listener's protocol
// understands, and an upstream that speaks a matching protocol.
func (r *RouteConfig) validateFor(protocol, path string, ups map[string]UpstreamConfig, p *configerr.List) {
	if isStream(protocol) && r.Static != nil {
		p.Add(path+".static", "only http listeners serve files")
	}

	if isStream(protocol) {
		m := r.Match
		if trimPrefix(m.PathPrefix) != "/" || len(m.Methods) > 0 || len(m.Headers) > 0 || r.StripPrefix || r.RewritePrefix != "" ||
			len(r.RequestHeaders.Set)+len(r.RequestHeaders.Remove)+len(r.ResponseHeaders.Set)+len(r.ResponseHeaders.Remove) > 0 {
			p.Add(path, "a %s listener routes on match.hosts (TLS SNI) only; remove the HTTP conditions and edits", protocol)
		}
		if r.Fallback.set() {
			p.Add(path+".fallback", "only http routes have fallbacks; a %s connection is closed when no target is available", protocol)
		}
	}
	up, ok := ups[r.Upstream]
	if !ok {
		return
	}
	upProto := up.Protocol
	if upProto == "" {
		upProto = ProtocolHTTP
	}
	switch {
	case isStream(protocol) && !slices.Contains([]string{ProtocolTCP, ProtocolTLS, ProtocolPostgres}, upProto):
		p.Add(path+".upstream", "upstream %q speaks %s; a %s listener needs a tcp, tls or postgres upstream", r.Upstream, upProto, protocol)
	case !isStream(protocol) && !slices.Contains([]string{ProtocolHTTP, ProtocolHTTPS, ProtocolH2C}, upProto):
		p.Add(path+".upstream", "upstream %q speaks %s; an http listener needs an http, https or h2c upstream", r.Upstream, upProto)
	}
}

func (h HeaderOps) validate(path string, p *configerr.List) {
	for _, name := range slices.Sorted(maps.Keys(h.Set)) {
		switch {
		case !isToken(name):
			p.Add(path+".set", "%q is not a valid header name", name)
		case isHopByHop(name) || isForwardingHeader(name) || isIdentityHeader(name):
			p.Add(path+".set", "%s is managed by drawbridge and cannot be set", name)
		case strings.ContainsAny(h.Set[name], "\r\n\x00"):
			p.Add(path+".set."+name, "value must not contain CR, LF or NUL")
		}
	}
	for _, name := range slices.Sorted(maps.Keys(h.SetSecret)) {
		switch {
		case !isToken(name):
			p.Add(path+".set_secret", "%q is not a valid header name", name)
		case isHopByHop(name) || isForwardingHeader(name) || isIdentityHeader(name) || http.CanonicalHeaderKey(name) == "Host":
			p.Add(path+".set_secret", "%s is managed by drawbridge and cannot be set", name)
		}
		// The reference itself (file:..., env:...) is the secret source's
		// to read: the file loader checks its form, and New refuses one
		// Deps.Secrets cannot resolve.
		if _, dup := h.Set[name]; dup {
			p.Add(path+".set_secret."+name, "is also in set; use one")
		}
	}
	for i, name := range h.Remove {
		if !isToken(name) {
			p.Add(fmt.Sprintf("%s.remove[%d]", path, i), "%q is not a valid header name", name)
		}
	}
}

func (u *UpstreamConfig) validate(path string, p *configerr.List) {
	switch {
	case u.Protocol != ProtocolHTTP && u.Protocol != ProtocolHTTPS && u.HTTP1 != "":
		p.Add(path+".http1", "only http and https upstreams have an HTTP/1 client")
	case u.HTTP1 != "" && u.HTTP1 != HTTP1Native && u.HTTP1 != HTTP1Std:
		p.Add(path+".http1", "unknown client %q (want native or std)", u.HTTP1)
	}
	if len(u.Targets) == 0 {
		p.Add(path+".targets", "at least one target (host:port) is required")
	}
	u.validateWeights(path, p)
	seen := map[string]bool{}
	for i, t := range u.Targets {
		tpath := fmt.Sprintf("%s.targets[%d]", path, i)
		if err := checkHostPort(t, false); err != nil {
			p.Add(tpath, "%v", err)
		}
		if seen[t] {
			p.Add(tpath, "%s is listed twice", t)
		}
		seen[t] = true
	}
	switch u.Protocol {
	case ProtocolHTTP, ProtocolHTTPS, ProtocolH2C, ProtocolTCP, ProtocolTLS, ProtocolPostgres:
	default:
		p.Add(path+".protocol", "unknown protocol %q (want http, https, h2c, tcp, tls or postgres)", u.Protocol)
	}
	if !slices.Contains(balancer.Policies, u.Balance) {
		p.Add(path+".balance", "unknown policy %q (want one of %s)", u.Balance, strings.Join(balancer.Policies, ", "))
	}
	for _, d := range []struct {
		key string
		val int64
	}{
		{"timeouts.dial", int64(u.Timeouts.Dial)}, {"timeouts.tls_handshake", int64(u.Timeouts.TLSHandshake)},
		{"timeouts.response_header", int64(u.Timeouts.ResponseHeader)}, {"timeouts.idle_conn", int64(u.Timeouts.IdleConn)},
		{"max_idle_per_target", int64(u.MaxIdlePerTarget)},
		{"retries.backoff_base", int64(u.Retries.BackoffBase)}, {"retries.backoff_max", int64(u.Retries.BackoffMax)},
	} {
		if d.val <= 0 {
			p.Add(path+"."+d.key, "must be > 0")
		}
	}
	u.TLS.validate(path+".tls", p)
	if u.Retries.Attempts < 1 || u.Retries.Attempts > 10 {
		p.Add(path+".retries.attempts", "must be between 1 and 10, got %d", u.Retries.Attempts)
	}
	if u.Retries.PerTryTimeout < 0 {
		p.Add(path+".retries.per_try_timeout", "must be >= 0")
	}
	for i, s := range u.Retries.OnStatus {
		if s < 500 || s > 599 {
			p.Add(fmt.Sprintf("%s.retries.on_status[%d]", path, i), "%d is not a 5xx status", s)
		}
	}
	u.Retries.Budget.validate(path+".retries.budget", p)
	p.Nest(path+".health", u.Health.Validate())
	switch stream := isStream(u.Protocol) || u.Protocol == ProtocolTLS; {
	case stream && u.Health.Type == health.TypeHTTP:
		p.Add(path+".health.type", "http checks need an http, https or h2c upstream; use tcp, tls or postgres")
	case !stream && u.Health.Type == health.TypePostgres:
		p.Add(path+".health.type", "postgres checks need a tcp, tls or postgres upstream")
	case (u.Protocol == ProtocolHTTP || u.Protocol == ProtocolH2C) && u.Health.Type == health.TypeTLS:
		p.Add(path+".health.type", "the targets of a %s upstream do not speak TLS; use http or tcp", u.Protocol)
	}
	p.Nest(path+".outlier", u.Outlier.Validate())
	p.Nest(path+".breaker", u.Breaker.Validate())
	p.Nest(path+".discovery", u.Discovery.Validate())
}

// matchKey identifies what a route matches, to find routes that shadow each other.
func (r *RouteConfig) matchKey() string {
	hosts := slices.Clone(r.Match.Hosts)
	for i := range hosts {
		hosts[i] = strings.ToLower(hosts[i])
	}
	sort.Strings(hosts)
	methods := slices.Clone(r.Match.Methods)
	sort.Strings(methods)
	var hdrs []string
	for _, k := range slices.Sorted(maps.Keys(r.Match.Headers)) {
		hdrs = append(hdrs, http.CanonicalHeaderKey(k)+"="+r.Match.Headers[k])
	}
	return strings.Join(hosts, ",") + "|" + trimPrefix(r.Match.PathPrefix) + "|" + strings.Join(methods, ",") + "|" + strings.Join(hdrs, ",")
}

func checkHostPort(addr string, listen bool) error {
	if addr == "" {
		return fmt.Errorf("is required (host:port)")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 || (n == 0 && !listen) {
		return fmt.Errorf("%q has an invalid port", addr)
	}
	if host == "" && !listen {
		return fmt.Errorf("%q has no host", addr)
	}
	if strings.ContainsAny(host, " /\\@") {
		return fmt.Errorf("%q has an invalid host", addr)
	}
	return nil
}

func checkHostPattern(h string) error {
	name := strings.TrimPrefix(h, "*.")
	if name == "" || strings.Contains(name, "*") || strings.ContainsAny(name, " /:\\@") {
		return fmt.Errorf("%q is not a host name or a *.wildcard", h)
	}
	return nil
}

func checkPathPrefix(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("%q must start with /", p)
	}
	if n, ok := normalizePath(p); !ok || trimPrefix(n) != trimPrefix(p) {
		return fmt.Errorf("%q is not a normalised path (no dot segments, //, or encoded characters)", p)
	}
	return nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR", s)
		}
		return pfx.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// isToken reports whether s is an RFC 9110 token (header names, methods).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// validateStripHeaders checks strip_headers and keep_headers: header names,
// and keep_headers only among the defaults it exempts.
func validateStripHeaders(path string, l *ListenerConfig, p *configerr.List) {
	for i, name := range l.StripHeaders {
		if !isToken(name) {
			p.Add(fmt.Sprintf("%s.strip_headers[%d]", path, i), "%q is not a valid header name", name)
		}
	}
	defaults := newStripSet(nil, nil)
	for i, name := range l.KeepHeaders {
		if !defaults[foldName(name)] {
			p.Add(fmt.Sprintf("%s.keep_headers[%d]", path, i), "%q is not one of the default stripped headers (%s)",
				name, strings.Join(DefaultStripHeaders, ", "))
		}
	}
}

// validate checks the retry budget of an upstream.
func (b RetryBudgetConfig) validate(path string, p *configerr.List) {
	if b.Ratio <= 0 || b.Ratio > 1 {
		p.Add(path+".ratio", "must be > 0 and <= 1, got %g", b.Ratio)
	}
	if b.MinPerSecond <= 0 {
		p.Add(path+".min_per_second", "must be > 0")
	}
	if b.Window < time.Second {
		p.Add(path+".window", "must be at least 1s, got %s", b.Window)
	}
}
