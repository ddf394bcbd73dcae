package proxy

import "net/http"

// Security header presets (listeners.*.security_headers).
const (
	SecurityHeadersOff         = "off"
	SecurityHeadersRecommended = "recommended"
)

// hstsRecommended is the preset's Strict-Transport-Security: one year, the
// floor of the HSTS preload list. tls.hsts_max_age, when set, wins.
const hstsRecommended = "max-age=31536000"

// recommendedHeaders are the preset's response headers besides HSTS. Each
// is added only when the upstream sent none, so an application that knows
// better (its own Content-Security-Policy, a page meant to be framed)
// keeps its value.
var recommendedHeaders = [][2]string{
	{"X-Content-Type-Options", "nosniff"},                  // no MIME sniffing of responses
	{"Referrer-Policy", "strict-origin-when-cross-origin"}, // no full URLs to other origins
	{"Content-Security-Policy", "frame-ancestors 'self'"},  // no framing by other origins (clickjacking)
	{"X-Frame-Options", "SAMEORIGIN"},                      // the same, for browsers before CSP 2
}

// securityHeaders returns the headers a listener's preset adds to responses.
func securityHeaders(preset string) [][2]string {
	if preset == SecurityHeadersRecommended {
		return recommendedHeaders
	}
	return nil
}

// addMissing sets each header of hs that h does not have.
func addMissing(h http.Header, hs [][2]string) {
	for _, kv := range hs {
		if _, ok := h[kv[0]]; !ok {
			h[kv[0]] = []string{kv[1]}
		}
	}
}
