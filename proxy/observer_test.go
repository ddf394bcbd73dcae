package proxy_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/drawbridge-proxy/drawbridge/proxy"
)

type recordingObserver struct {
	mu   sync.Mutex
	seen []proxy.RequestRecord
}

func (o *recordingObserver) ObserveRequest(r proxy.RequestRecord) {
	o.mu.Lock()
	o.seen = append(o.seen, r)
	o.mu.Unlock()
}

// TestObserverSeesEveryRequest: the observer hook gets one record per
// request with the route, the upstream, the target and the client's
// status, with the access log on or off, for routed and unrouted requests.
func TestObserverSeesEveryRequest(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/boom") {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer be.Close()
	target := strings.TrimPrefix(be.URL, "http://")
	for _, disabled := range []bool{false, true} {
		cfg := oneRoute(target)
		cfg.Listeners["edge"] = proxy.ListenerConfig{Routes: []proxy.RouteConfig{
			{Name: "all", Upstream: "app", Match: proxy.MatchConfig{Hosts: []string{"app.test"}}}}}
		cfg.AccessLog.Disabled = disabled
		cfg.Defaults()
		obs := &recordingObserver{}
		g := startGatewayWith(t, cfg, proxy.Deps{Observer: obs})
		for _, path := range []string{"/ok", "/boom"} {
			req, _ := http.NewRequest("GET", g.url+path, nil)
			req.Host = "app.test"
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		resp, err := http.Get(g.url + "/nowhere") // no route for this host
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		g.stop(t)
		obs.mu.Lock()
		got := obs.seen
		obs.mu.Unlock()
		if len(got) != 3 {
			t.Fatalf("access log disabled=%v: %d records, want 3: %+v", disabled, len(got), got)
		}
		for i, want := range []proxy.RequestRecord{
			{Listener: "edge", Route: "all", Upstream: "app", Target: target, Status: 200},
			{Listener: "edge", Route: "all", Upstream: "app", Target: target, Status: 500},
			{Listener: "edge", Status: got[2].Status},
		} {
			g := got[i]
			if g.Duration <= 0 {
				t.Errorf("record %d has no duration", i)
			}
			g.Duration = 0
			if g != want {
				t.Errorf("access log disabled=%v: record %d = %+v, want %+v", disabled, i, g, want)
			}
		}
		if got[2].Status < 400 {
			t.Errorf("an unrouted request recorded with status %d", got[2].Status)
		}
	}
}
