package proxy

import (
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// The request and attempt series of a busy gateway are few and hot:
// WithLabelValues hashes every label value and takes the vector's lock
// on each call, several times per request. Their children are looked up
// once here, by listener, route and upstream (or upstream and target),
// and kept: the traffic series are never deleted. A child is created on
// its first use, as WithLabelValues would, so /metrics shows the same
// series.

// seriesKey names a request series set.
type seriesKey struct{ listener, route, upstream string }

// attemptKey names an attempt series set.
type attemptKey struct{ upstream, target string }

// methodLabels are methodLabel's values, by methodIndex.
var methodLabels = [...]string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodOptions, http.MethodTrace, http.MethodConnect, labelOther}

func methodIndex(m string) int {
	for i, l := range methodLabels[:len(methodLabels)-1] {
		if m == l {
			return i
		}
	}
	return len(methodLabels) - 1
}

// classLabels are statusClass's values, by classIndex.
var classLabels = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx", "unknown"}

func classIndex(status int) int {
	if status >= 100 && status < 600 {
		return status/100 - 1
	}
	return len(classLabels) - 1
}

// requestSeries are the children of one listener, route and upstream.
type requestSeries struct {
	requests [len(methodLabels)][len(classLabels)]atomic.Pointer[prometheus.Counter]
	duration [len(classLabels)]atomic.Pointer[prometheus.Observer]
	bytesIn  atomic.Pointer[prometheus.Counter]
	bytesOut atomic.Pointer[prometheus.Counter]
}

// attemptSeries are the children of one upstream and target for attempts
// that got a response head, by status class; failed attempts are rare
// and take WithLabelValues.
type attemptSeries struct {
	attempts [len(classLabels)]atomic.Pointer[prometheus.Observer]
}

// seriesCache maps keys to series sets. Reads take no lock: the map is
// replaced, never changed, when a key is added.
type seriesCache[K comparable, V any] struct {
	m  atomic.Pointer[map[K]*V]
	mu sync.Mutex // serialises additions
}

func (c *seriesCache[K, V]) get(k K) *V {
	if m := c.m.Load(); m != nil {
		if v := (*m)[k]; v != nil {
			return v
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old != nil && (*old)[k] != nil {
		return (*old)[k]
	}
	next := make(map[K]*V, 1)
	if old != nil {
		for key, v := range *old {
			next[key] = v
		}
	}
	v := new(V)
	next[k] = v
	c.m.Store(&next)
	return v
}

// cached returns the child in p, looking it up with lookup the first time.
func cached[T any](p *atomic.Pointer[T], lookup func() T) T {
	if c := p.Load(); c != nil {
		return *c
	}
	c := lookup()
	p.Store(&c) // a racing lookup stores the same child
	return c
}
