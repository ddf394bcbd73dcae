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
