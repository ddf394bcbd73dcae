package config

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestSecretRefProblems: the loader checks set_secret references (the data
// plane only carries them), before a clash with set on the same key.
func TestSecretRefProblems(t *testing.T) {
	src := `listeners:
  edge:
    address: 127.0.0.1:8443
    routes:
      - upstream: api
        request_headers:
          set: {X-Api-Key: plain}
          set_secret: {X-Api-Key: "hunter2", X-Other: "file:/run/secrets/other"}
upstreams:
  api:
    targets: [127.0.0.1:8000]
`
	path := "listeners.edge.routes[0].request_headers.set_secret.X-Api-Key"
	want := []Problem{
		{Line: 8, Path: path, Message: `not a secret reference: write "file:/run/secrets/NAME" (or, for development, "env:NAME"), never the value itself`},
		{Line: 8, Path: path, Message: "is also in set; use one"},
	}
	if diff := cmp.Diff(want, problems(t, src)); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}
