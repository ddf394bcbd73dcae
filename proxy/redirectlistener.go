package proxy

import (
	"net/http"

	"github.com/drawbridge-proxy/drawbridge/telemetry/configerr"
)

// routeRedirect is the route label of a redirect_to_https listener's requests.
const routeRedirect = "https_redirect"

// HTTPChallenger is implemented by a TLSProvider that runs ACME: its
// handler answers http-01 challenges (RFC 8555 section 8.3) under
// /.well-known/acme-challenge/ and passes every other request to next. A
// redirect_to_https listener mounts it in front of the redirect.
type HTTPChallenger interface {
	HTTPChallengeHandler(next http.Handler) http.Handler
}

// redirectHandler is the handler of a redirect_to_https listener, nil for
// any other.
func (s *Server) redirectHandler(lc ListenerConfig) http.Handler {
	if lc.RedirectToHTTPS == nil {
		return nil
	}
	h := lc.RedirectToHTTPS.Handler(func(w http.ResponseWriter, r *http.Request) {
		s.errs.write(w, http.StatusBadRequest, exchangeFrom(r.Context()).requestID)
	})
	if c, ok := s.deps.TLS.(HTTPChallenger); ok {
		h = c.HTTPChallengeHandler(h)
	}
	return h
}

// validateRedirect checks a redirect_to_https listener.
func (l *ListenerConfig) validateRedirect(path string, p *configerr.List) {
	if l.RedirectToHTTPS == nil {
		return
	}
	p.Nest(path+".redirect_to_https", l.RedirectToHTTPS.Validate())
	if l.Protocol != ProtocolHTTP || l.TLS.Mode != TLSNone {
		p.Add(path+".redirect_to_https", "needs a plain-HTTP listener (protocol http, no tls)")
	}
	if len(l.Routes) > 0 {
		p.Add(path+".routes", "a redirect_to_https listener answers every request itself; remove its routes")
	}
}
