package config

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestWeightedTargets(t *testing.T) {
	src := strings.Replace(good, `targets: ["127.0.0.1:8000"]`, `targets:
      - {address: "127.0.0.1:8000", weight: 90}
      - "127.0.0.1:8001"
      - address: "127.0.0.1:8002"
        weight: 0`, 1)
	f, err := Parse("weights.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	u := f.Upstreams["api"]
	if diff := cmp.Diff([]string{"127.0.0.1:8000", "127.0.0.1:8001", "127.0.0.1:8002"}, u.Targets); diff != "" {
		t.Errorf("targets (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{90, 1, 0}, u.Weights); diff != "" {
		t.Errorf("weights (-want +got):\n%s", diff)
	}
	if got := u.Timeouts.Dial.String(); got != "500ms" {
		t.Errorf("the rest of the upstream was not decoded: dial %s", got)
	}
}

func TestWeightedTargetProblems(t *testing.T) {
	src := strings.Replace(good, `targets: ["127.0.0.1:8000"]`, `targets:
      - {address: "127.0.0.1:8000", wieght: 5}
      - {address: "127.0.0.1:8001", weight: -3}
    balanse: round_robin`, 1)
	var got []string
	for _, p := range problems(t, src) {
		got = append(got, fmt.Sprintf("%d %s: %s", p.Line, p.Path, p.Message))
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{`12 upstreams.api.targets[0]: unknown key "wieght"`, `upstreams.api.targets[1].weight: must be between 0`, `balanse`} {
		if !strings.Contains(all, want) {
			t.Errorf("problems:\n%s\nwant one with %q (strict decoding must survive the targets' own decoder)", all, want)
		}
	}
}

// TestEdgeFeatureProblems: the edge features' bad values come back from
// the loader (what 'drawbridge validate' prints) with their key paths.
func TestEdgeFeatureProblems(t *testing.T) {
	src := `listeners:
  web:
    address: 127.0.0.1:8080
    redirect_to_https: {port: 0x1ffff}
  edge:
    address: 127.0.0.1:8443
    routes:
      - name: files
        match: {path_prefix: /app}
        static: {root: srv/www, spa_fallback: ../index.html, listing: true}
      - name: api
        upstream: api
        compression: {encodings: [br]}
        rate_limit: {rate: 0, key: cookie}
        max_in_flight: -1
upstreams:
  api:
    targets: ["127.0.0.1:8000"]
`
	var got []string
	for _, p := range problems(t, src) {
		got = append(got, fmt.Sprintf("%d %s: %s", p.Line, p.Path, p.Message))
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{
		"4 listeners.web.redirect_to_https.port: must be a port",
		"10 listeners.edge.routes[0].static.listing: unknown key",
		"listeners.edge.routes[0].static.root: ",
		"listeners.edge.routes[0].static.spa_fallback: ",
		"listeners.edge.routes[1].compression.encodings[0]: unknown encoding",
		"listeners.edge.routes[1].rate_limit.rate: must be > 0",
		"listeners.edge.routes[1].rate_limit.key: unknown key",
		"listeners.edge.routes[1].max_in_flight: must be >= 0",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("problems:\n%s\nwant one with %q", all, want)
		}
	}
}
