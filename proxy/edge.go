package proxy

import (
	"net/http"

	"github.com/drawbridge-proxy/drawbridge/proxy/compress"
)

// wrapEdge builds what answers the route's requests once the listener has
// admitted them: its files or its proxy, inside the route's compression.
func (r *route) wrapEdge(rc RouteConfig, m *metrics) {
	var h http.Handler = r.proxy
	if r.static != nil {
		h = r.static
	}
	if rc.Compression != nil {
		em := m.edgeOf()
		c := compress.New(*rc.Compression, compress.Deps{
			Observe: func(req *http.Request, encoding string, in, out int64) {
				exchangeFrom(req.Context()).encoding = encoding
				em.compression(r.name, encoding, in, out)
			},
		})
		h = c.Wrap(h)
	}
	r.serve = h
}

// handler is what answers the route's requests.
func (r *route) handler() http.Handler {
	if r.serve != nil {
		return r.serve
	}
	return r.proxy
}

// validateEdge checks the route's edge features.
func (r *RouteConfig) validateEdge(protocol, path string, p *problems) {
	if r.Compression == nil {
		return
	}
	if isStream(protocol) {
		p.add(path+".compression", "only http routes compress responses")
		return
	}
	p.nest(path+".compression", r.Compression.Validate())
}
