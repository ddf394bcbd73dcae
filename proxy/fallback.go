package proxy

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/drawbridge-proxy/drawbridge/proxy/breaker"
	"github.com/drawbridge-proxy/drawbridge/telemetry/configerr"
)

// FallbackConfig is what a route answers when no target of its upstream is
// available (every one unhealthy, ejected or behind an open breaker): the
// request goes to another upstream, or gets a static response. Set one of
// Upstream and Status.
type FallbackConfig struct {
	// Upstream receives the request instead, with its own targets,
	// breakers and retries. Zero: no fallback upstream.
	Upstream string `yaml:"upstream"`
	// Status of a static response, e.g. 503 or 200. Zero: no static response.
	Status int `yaml:"status"`
	// Headers of the static response. Zero: only Content-Type
	// text/plain; charset=utf-8 (when Body is set) and Cache-Control no-store.
	Headers map[string]string `yaml:"headers"`
	// Body of the static response. Zero: empty.
	Body string `yaml:"body"`
}

func (f *FallbackConfig) set() bool { return f.Upstream != "" || f.Status != 0 }

func (f *FallbackConfig) validate(path, primary string, ups map[string]UpstreamConfig, p *configerr.List) {
	switch {
	case f.Upstream != "" && f.Status != 0:
		p.Add(path, "set either upstream or status, not both")
	case f.Upstream != "":
		if _, ok := ups[f.Upstream]; !ok {
			p.Add(path+".upstream", "unknown upstream %q", f.Upstream)
		} else if f.Upstream == primary {
			p.Add(path+".upstream", "is the route's own upstream; name another one")
		}
		if len(f.Headers) > 0 || f.Body != "" {
			p.Add(path, "headers and body belong to a static response (status); remove them or the upstream")
		}
	case f.Status != 0:
		if f.Status < 200 || f.Status > 599 {
			p.Add(path+".status", "must be between 200 and 599, got %d", f.Status)
		}
	case len(f.Headers) > 0 || f.Body != "":
		p.Add(path+".status", "is required for a static response")
	}
	HeaderOps{Set: f.Headers}.validate(path+".headers", p)
}

// routeTransport is the RoundTripper of one route: the upstream's attempt
// loop with the route's breakers, then the route's fallback when the
// upstream has no available target.
type routeTransport struct {
	route    string
	up       *upstream
	breakers *breaker.Set
	fallback *FallbackConfig // nil: none
	fbUp     *upstream       // the fallback upstream, if that is the kind
	metrics  *resilienceMetrics
}

func (rt *routeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := rt.up.loop.RoundTrip(req, rt.breakers)
	if rt.fallback == nil || !errors.Is(err, ErrNoTarget) {
		return resp, err
	}
	// ErrNoTarget comes before any attempt, so the body is untouched.
	if rt.fbUp != nil {
		inc(rt.metrics.fallbacks, rt.route, "upstream")
		out := req.Clone(req.Context())
		u := *req.URL
		u.Scheme = rt.fbUp.scheme
		out.URL = &u
		return rt.fbUp.loop.RoundTrip(out, rt.fbUp.guards.breakers)
	}
	inc(rt.metrics.fallbacks, rt.route, "static")
	return staticResponse(req, rt.fallback), nil
}

// staticResponse builds the configured answer as if an upstream had sent it,
// so the route's response header edits apply to it too.
func staticResponse(req *http.Request, f *FallbackConfig) *http.Response {
	h := http.Header{"Cache-Control": {"no-store"}}
	if f.Body != "" {
		h.Set("Content-Type", "text/plain; charset=utf-8")
	}
	for k, v := range f.Headers {
		h.Set(k, v)
	}
	h.Set("Content-Length", strconv.Itoa(len(f.Body)))
	return &http.Response{
		Status:        strconv.Itoa(f.Status) + " " + http.StatusText(f.Status),
		StatusCode:    f.Status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(strings.NewReader(f.Body)),
		ContentLength: int64(len(f.Body)),
		Request:       req,
	}
}
