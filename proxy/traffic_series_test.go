package proxy

import (
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMethodAndClassLabels(t *testing.T) {
	for _, tc := range []struct{ method, want string }{
		{http.MethodGet, "GET"}, {http.MethodConnect, "CONNECT"}, {"PROPFIND", labelOther}, {"get", labelOther}, {"", labelOther},
	} {
		if got := methodLabel(tc.method); got != tc.want {
			t.Errorf("methodLabel(%q) = %q, want %q", tc.method, got, tc.want)
		}
	}
	for _, tc := range []struct {
		status int
		want   string
	}{{100, "1xx"}, {200, "2xx"}, {399, "3xx"}, {499, "4xx"}, {599, "5xx"}, {600, "unknown"}, {0, "unknown"}, {99, "unknown"}} {
		if got := classLabels[classIndex(tc.status)]; got != tc.want {
			t.Errorf("class of %d = %q, want %q", tc.status, got, tc.want)
		}
	}
}

// The cached children are the vectors' own: what a request records shows
// in the series WithLabelValues would have named, and a second set of
// labels gets series of its own. Once cached, a request records without
// allocating.
func TestRequestSeriesCached(t *testing.T) {
	m, err := newMetrics(prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	a := &exchange{listener: "edge", route: "api", upstream: "app"}
	b := &exchange{listener: "edge", route: "web", upstream: "app"}
	for range 3 {
		m.request(a, http.MethodGet, 200, time.Millisecond, 0, 10, "")
	}
	m.request(b, "BREW", 503, time.Millisecond, 5, 0, "")
	m.attempt("app", "10.0.0.1:80", 200, time.Millisecond, nil, "")
	checks := []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"requests api GET 2xx", m.requests.WithLabelValues("edge", "api", "app", "GET", "2xx"), 3},
		{"requests web OTHER 5xx", m.requests.WithLabelValues("edge", "web", "app", labelOther, "5xx"), 1},
		{"bytes out api", m.bytesOut.WithLabelValues("edge", "api", "app"), 30},
		{"bytes in web", m.bytesIn.WithLabelValues("edge", "web", "app"), 5},
	}
	for _, c := range checks {
		if got := testutil.ToFloat64(c.c); got != c.want {
			t.Errorf("%s = %g, want %g", c.name, got, c.want)
		}
	}
	if n := testutil.CollectAndCount(m.duration); n != 2 {
		t.Errorf("%d duration series, want 2", n)
	}
	if n := testutil.CollectAndCount(m.attempts); n != 1 {
		t.Errorf("%d attempt series, want 1", n)
	}
	if n := testing.AllocsPerRun(100, func() {
		m.request(a, http.MethodGet, 200, time.Millisecond, 0, 10, "")
		m.attempt("app", "10.0.0.1:80", 200, time.Millisecond, nil, "")
	}); n != 0 {
		t.Errorf("a cached request and attempt record %.1f allocations, want 0", n)
	}
}
