package proxy

import (
	"net/http"
	"net/url"

	"github.com/drawbridge-proxy/drawbridge/proxy/static"
	"github.com/drawbridge-proxy/drawbridge/telemetry/configerr"
)

// serveStatic makes r serve files by cfg instead of forwarding. Problems
// with the files are reported under key (the route's static section).
func (r *route) serveStatic(cfg static.Config, errs *errorWriter, m *metrics, key string) error {
	em := m.edgeOf()
	h, err := static.New(cfg, static.Deps{
		Error: func(w http.ResponseWriter, req *http.Request, status int) {
			id := exchangeFrom(req.Context()).requestID
			if status == http.StatusNotFound {
				writeRefusal(w, status, "not found", id) // errs says "no route", which is not what happened
				return
			}
			errs.write(w, status, id)
		},
		Served: func(req *http.Request, result, encoding string) {
			ex := exchangeFrom(req.Context())
			ex.static, ex.encoding = result, encoding
			em.staticResult(r.name, result, encoding)
		},
	})
	if err != nil {
		var l configerr.List
		l.Nest(key, err)
		return l.Err()
	}
	r.static = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ex := exchangeFrom(req.Context())
		r.respHeaders.apply(w.Header())
		w.Header().Set(HeaderRequestID, ex.requestID)
		// The file path is the normalised path with the route's prefix
		// edits (strip_prefix, rewrite_prefix) applied, as an upstream
		// would have seen it.
		p, _ := r.upstreamPath(ex.path, "", true)
		in := *req.URL
		in.Path, in.RawPath = p, ""
		h.ServeHTTP(w, withURL(req, &in))
	})
	return nil
}

func withURL(req *http.Request, u *url.URL) *http.Request {
	out := new(http.Request)
	*out = *req
	out.URL = u
	return out
}

// validateStatic checks a static route: its section, and that nothing
// only a forwarding route uses is set.
func (r *RouteConfig) validateStatic(path string, p *configerr.List) {
	p.Nest(path+".static", r.Static.Validate())
	if r.Upstream != "" {
		p.Add(path+".upstream", "a static route serves files; remove upstream or static")
	}
	if r.Fallback.set() {
		p.Add(path+".fallback", "a static route has no upstream to fall back from")
	}
	if r.Breaker != nil {
		p.Add(path+".breaker", "a static route has no upstream to break")
	}
	if len(r.RequestHeaders.Set)+len(r.RequestHeaders.SetSecret)+len(r.RequestHeaders.Remove) > 0 {
		p.Add(path+".request_headers", "a static route sends no request upstream")
	}
}

// writeRefusal answers like errorWriter (a small JSON body without
// internals) with a message of the caller's; headers the caller set, such
// as Retry-After, are kept.
func writeRefusal(w http.ResponseWriter, status int, msg, requestID string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if requestID != "" {
		h.Set(HeaderRequestID, requestID)
	}
	w.WriteHeader(status)
	// The request ID is validated to [A-Za-z0-9._:-] and msg is ours.
	_, _ = w.Write([]byte(`{"error":"` + msg + `","request_id":"` + requestID + `"}` + "\n"))
}
