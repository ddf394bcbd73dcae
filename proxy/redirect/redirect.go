package redirect

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/drawbridge-proxy/drawbridge/telemetry/configerr"
)

// Config is a listener's `redirect_to_https` section.
type Config struct {
	// Port is the HTTPS port redirected to; 443 is left out of the URL.
	// Zero means 443.
	Port int `yaml:"port"`
}

// Defaults fills the zero fields that have a default.
func (c *Config) Defaults() {
	if c.Port == 0 {
		c.Port = 443
	}
}

// Validate reports every problem, each naming its key relative to the section.
func (c *Config) Validate() error {
	if c.Port < 1 || c.Port > 65535 {
		return configerr.List{{Path: "port", Msg: fmt.Sprintf("must be a port (1-65535), got %d", c.Port)}}
	}
	return nil
}

// ErrBadHost is returned by Target for a Host that cannot go into a URL.
var ErrBadHost = errors.New("the request has no usable host")

// Target is the https URL for r: its host without the port, Port unless
// 443, and the request target's path and query as the client sent them.
func (c Config) Target(r *http.Request) (string, error) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if !validHost(host) {
		return "", ErrBadHost
	}
	if strings.Contains(host, ":") { // an IPv6 literal
		host = "[" + host + "]"
	}
	if c.Port != 443 {
		host += ":" + strconv.Itoa(c.Port)
	}
	path := r.URL.EscapedPath()
	if path == "" || path[0] != '/' {
		path = "/" + path
	}
	if r.URL.RawQuery != "" {
		path += "?" + r.URL.RawQuery
	}
	return "https://" + host + path, nil
}

// validHost accepts DNS names and IP literals: nothing that could break
// out of the Location header or point the redirect elsewhere (no '@', '/').
func validHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == ':' || c == '_') {
			return false
		}
	}
	return true
}

// Handler answers with the redirect; a request without a usable Host gets
// 400 through bad.
func (c Config) Handler(bad func(w http.ResponseWriter, r *http.Request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target, err := c.Target(r)
		if err != nil {
			bad(w, r)
			return
		}
		w.Header().Set("Location", target)
		w.Header().Set("Cache-Control", "no-cache") // an operator may move HTTPS; a browser keeps HSTS for the long term
		w.WriteHeader(http.StatusPermanentRedirect)
	})
}
