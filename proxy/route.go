package proxy

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/drawbridge-proxy/drawbridge/pki/identity"
)

// route is a RouteConfig compiled for the hot path.
type route struct {
	name        string
	listener    string
	hosts       []string // lower case
	prefix      string   // without trailing slash, except "/"
	methods     []string
	headers     []headerMatch
	strip       bool
	rewrite     string // replacement prefix; "" for none
	reqHeaders  headerEdit
	respHeaders headerEdit
	maxBody     int64
	upgrades    []string    // lower case
	stripHdrs   stripSet    // the listener's request headers to remove
	security    [][2]string // response headers of the listener's preset, added when missing
	upstream    *upstream
	forward     *forwarder
	allow       *identity.AllowList // nil: every identity the listener admits
	static      http.Handler        // serves the route's files; nil: the route forwards
	serve       http.Handler        // static or proxy wrapped in the route's edge features (edge.go)
}

type headerMatch struct{ name, value string }

// headerEdit applies HeaderOps with names canonicalised once.
type headerEdit struct {
	set     [][2]string
	secrets []secretHeader
	remove  []string
	host    string // Set["Host"], which lives in Request.Host, not the header map
}

type secretHeader struct {
	name  string
	value SecretValue
}

// SecretValue is a secret's current value; cmd's secret.Secret is one.
type SecretValue interface{ Value() []byte }

// SecretSource resolves secret references (file:..., env:...) to values
// that follow rotations. cmd adapts its secret.Watcher to it.
type SecretSource interface {
	Secret(ref string, validate func([]byte) error) (SecretValue, error)
}

// validHeaderValue refuses secrets that would split a header.
func validHeaderValue(v []byte) error {
	for _, c := range v {
		if c == '\r' || c == '\n' || c == 0 {
			return errors.New("a header value cannot hold CR, LF or NUL")
		}
	}
	return nil
}

func newHeaderEdit(ops HeaderOps, secrets SecretSource) (headerEdit, error) {
	var e headerEdit
	for _, name := range slices.Sorted(maps.Keys(ops.SetSecret)) {
		if secrets == nil {
			return e, fmt.Errorf("header %s needs a secret, but no secret source is configured", name)
		}
		v, err := secrets.Secret(ops.SetSecret[name], validHeaderValue)
		if err != nil {
			return e, fmt.Errorf("header %s: %w", name, err)
		}
		e.secrets = append(e.secrets, secretHeader{http.CanonicalHeaderKey(name), v})
	}
	for _, name := range ops.Remove {
		e.remove = append(e.remove, http.CanonicalHeaderKey(name))
	}
	for _, name := range slices.Sorted(maps.Keys(ops.Set)) {
		if http.CanonicalHeaderKey(name) == "Host" {
			e.host = ops.Set[name]
			continue
		}
		e.set = append(e.set, [2]string{http.CanonicalHeaderKey(name), ops.Set[name]})
	}
	return e, nil
}

func (e *headerEdit) apply(h http.Header) {
	for _, name := range e.remove {
		delete(h, name)
	}
	for _, kv := range e.set {
		h[kv[0]] = []string{kv[1]}
	}
	for _, sh := range e.secrets {
		h[sh.name] = []string{string(sh.value.Value())}
	}
}

func newRoute(listener string, cfg RouteConfig, up *upstream, deps routeDeps) (*route, error) {
	reqHeaders, err := newHeaderEdit(cfg.RequestHeaders, deps.secrets)
	if err != nil {
		return nil, fmt.Errorf("route %s: %w", cfg.Name, err)
	}
	respHeaders, err := newHeaderEdit(cfg.ResponseHeaders, nil)
	if err != nil {
		return nil, fmt.Errorf("route %s: %w", cfg.Name, err)
	}
	r := &route{
		name:        cfg.Name,
		listener:    listener,
		prefix:      trimPrefix(cfg.Match.PathPrefix),
		methods:     cfg.Match.Methods,
		strip:       cfg.StripPrefix,
		rewrite:     cfg.RewritePrefix,
		reqHeaders:  reqHeaders,
		respHeaders: respHeaders,
		maxBody:     int64(cfg.MaxBodyBytes),
		upstream:    up,
		allow:       newAllowList(cfg.Allow),
		stripHdrs:   deps.strip,
		security:    deps.security,
	}
	for _, h := range cfg.Match.Hosts {
		r.hosts = append(r.hosts, strings.ToLower(strings.TrimSuffix(h, ".")))
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Match.Headers)) {
		r.headers = append(r.headers, headerMatch{http.CanonicalHeaderKey(name), cfg.Match.Headers[name]})
	}
	for _, u := range cfg.Upgrades {
		r.upgrades = append(r.upgrades, strings.ToLower(u))
	}
	r.forward = &forwarder{route: r, transport: up, errs: deps.errs, buffers: deps.buffers, log: deps.log}
	return r, nil
}

// routeDeps are what every route of a Server shares.
type routeDeps struct {
	log      *slog.Logger
	errs     *errorWriter
	buffers  *bufferPool
	secrets  SecretSource
	strip    stripSet    // the listener's headers to remove
	security [][2]string // the listener's security_headers preset
}

// upstreamPath applies strip_prefix / rewrite_prefix to the normalised
// path, editing the client's original encoding the same way when it can be
// kept (the path needed no cleaning and still starts with the prefix).
func (r *route) upstreamPath(path, rawPath string, changed bool) (string, string) {
	if changed {
		rawPath = ""
	}
	if !r.strip && r.rewrite == "" {
		return path, rawPath
	}
	newPath, _ := r.editPrefix(path)
	if rawPath != "" {
		if edited, ok := r.editPrefix(rawPath); ok {
			rawPath = edited
		} else {
			rawPath = ""
		}
	}
	return newPath, rawPath
}

func (r *route) editPrefix(p string) (string, bool) {
	replacement := trimPrefix(r.rewrite)
	if replacement == "/" {
		replacement = ""
	}
	rest := p
	if r.prefix != "/" {
		if !strings.HasPrefix(p, r.prefix) {
			return "", false
		}
		rest = p[len(r.prefix):]
	}
	edited := replacement + rest
	if !strings.HasPrefix(edited, "/") {
		edited = "/" + edited
	}
	return edited, true
}

// modifyResponse applies the route's and the listener's response policy
// to the upstream's answer before it is copied to the client.
func (r *route) modifyResponse(resp *http.Response, ex *exchange) {
	if resp.StatusCode == http.StatusSwitchingProtocols {
		ex.upgraded = true
	}
	if ex.rw != nil && isEventStream(resp.Header.Get("Content-Type")) {
		// A stream lasts as long as it lasts: the listener's write timeout
		// is for ordinary responses.
		_ = http.NewResponseController(ex.rw).SetWriteDeadline(noDeadline)
	}
	if ex.hsts {
		delete(resp.Header, headerHSTS) // the listener's value is already set
	}
	r.respHeaders.apply(resp.Header)
	addMissing(resp.Header, r.security)
	resp.Header[HeaderRequestID] = ex.value(ex.requestID)
}

func isEventStream(ct string) bool {
	ct = strings.TrimSpace(ct)
	return len(ct) >= len("text/event-stream") && strings.EqualFold(ct[:len("text/event-stream")], "text/event-stream")
}

// allowUpgrade drops an Upgrade request header whose protocol the route does
// not allow, so the request proceeds as plain HTTP.
func (r *route) allowUpgrade(h http.Header) {
	up := h.Get("Upgrade")
	if up == "" {
		return
	}
	for _, allowed := range r.upgrades {
		if strings.EqualFold(strings.TrimSpace(up), allowed) {
			return
		}
	}
	dropNominated(h)
	h.Del("Upgrade")
	h.Del("Connection")
}
