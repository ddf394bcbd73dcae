package config

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const good = `
listeners:
  edge:
    address: 127.0.0.1:8443
    limits: {max_body_bytes: 1MiB}
    routes:
      - match: {path_prefix: /api}
        upstream: api
upstreams:
  api:
    targets: ["127.0.0.1:8000"]
    timeouts: {dial: 500ms}
`

func TestParseGood(t *testing.T) {
	f, err := Parse("good.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Listeners["edge"].Limits.MaxBodyBytes; got != 1<<20 {
		t.Errorf("max_body_bytes = %d, want 1MiB", got)
	}
	if got := f.Upstreams["api"].Timeouts.Dial.String(); got != "500ms" {
		t.Errorf("dial = %s, want 500ms", got)
	}
	if f.Admin.Address != DefaultAdminAddress || f.Logging.Level != "info" {
		t.Errorf("defaults not filled: admin %q, level %q", f.Admin.Address, f.Logging.Level)
	}
}

func problems(t *testing.T, src string) []Problem {
	t.Helper()
	_, err := Parse("test.yaml", []byte(src))
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("Parse error %v, want *config.Error", err)
	}
	return cerr.Problems
}

func TestUnknownKeysAndBadValuesAreAllReportedWithLines(t *testing.T) {
	src := `listeners:
  edge:
    address: 127.0.0.1:8443
    adress: typo
    timeouts: {read: fast}
    limits: {max_body_bytes: 10 parsecs}
    routes:
      - upstream: api
        stip_prefix: true
upstreams:
  api:
    targets: ["127.0.0.1:8000"]
    retries: {attempts: many}
`
	got := problems(t, src)
	want := []Problem{
		{Line: 4, Path: "listeners.edge.adress", Message: `unknown key "adress"; check its spelling and where it is indented`},
		{Line: 5, Path: "listeners.edge.timeouts.read", Message: `"fast" is not a valid duration (use a unit: 500ms, 5s, 1m)`},
		{Line: 6, Path: "listeners.edge.limits.max_body_bytes"},
		{Line: 9, Path: "listeners.edge.routes[0].stip_prefix", Message: `unknown key "stip_prefix"; check its spelling and where it is indented`},
		{Line: 13, Path: "upstreams.api.retries.attempts", Message: `"many" is not a valid integer`},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(got), len(want), got)
	}
	for i := range want {
		if got[i].Line != want[i].Line || got[i].Path != want[i].Path || (want[i].Message != "" && got[i].Message != want[i].Message) {
			t.Errorf("problem %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestValidationProblemsCarryLines(t *testing.T) {
	src := `admin:
  address: nowhere
listeners:
  edge:
    address: 127.0.0.1:8443
    routes:
      - upstream: api
      - upstream: missing
upstreams:
  api:
    targets:
      - 127.0.0.1:8000
      - no-port
logging:
  level: loud
`
	got := problems(t, src)
	var summary []string
	for _, p := range got {
		summary = append(summary, p.Path+"@"+itoa(p.Line))
	}
	want := []string{
		"admin.address@2",
		"listeners.edge.routes[1].upstream@8",
		"listeners.edge.routes[1].match@8", // both routes match everything
		"upstreams.api.targets[1]@13",
		"logging.level@15",
	}
	if diff := cmp.Diff(want, summary); diff != "" {
		t.Errorf("problems (-want +got):\n%s\nfull: %v", diff, got)
	}
}

func TestMissingKeyPointsAtItsParent(t *testing.T) {
	got := problems(t, "listeners:\n  edge:\n    routes: [{upstream: api}]\nupstreams:\n  api: {protocol: http}\n")
	found := map[string]int{}
	for _, p := range got {
		found[p.Path] = p.Line
	}
	if found["listeners.edge.address"] != 2 {
		t.Errorf("listeners.edge.address reported at line %d, want 2 (its listener): %v", found["listeners.edge.address"], got)
	}
	if found["upstreams.api.targets"] != 5 {
		t.Errorf("upstreams.api.targets reported at line %d, want 5: %v", found["upstreams.api.targets"], got)
	}
}

func TestSyntaxErrorAndEmptyFile(t *testing.T) {
	got := problems(t, "listeners:\n  edge: [\n")
	if len(got) != 1 || !strings.HasPrefix(got[0].Message, "YAML syntax") || got[0].Line == 0 {
		t.Errorf("syntax error problems = %+v, want one YAML syntax problem with a line", got)
	}
	got = problems(t, "# nothing\n")
	if len(got) != 1 || !strings.Contains(got[0].Message, "empty") {
		t.Errorf("empty file problems = %+v", got)
	}
}

func TestErrorFormat(t *testing.T) {
	e := &Error{File: "gw.yaml", Problems: []Problem{{Line: 3, Path: "a.b", Message: "bad"}, {Message: "worse"}}}
	want := "gw.yaml: line 3: a.b: bad\ngw.yaml: worse"
	if e.Error() != want {
		t.Errorf("Error() = %q, want %q", e.Error(), want)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// FuzzParse: the loader never panics, and anything it accepts is valid.
func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("listeners: {edge: {address: ':1', routes: [{upstream: a}]}}\nupstreams: {a: {targets: ['x:1']}}"))
	f.Add([]byte("listeners: &a {x: *a}"))
	f.Add([]byte("- [[[["))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data)
		if err != nil {
			var cerr *Error
			if !errors.As(err, &cerr) || len(cerr.Problems) == 0 {
				t.Fatalf("error %v is not a *config.Error with problems", err)
			}
			return
		}
		if verr := cfg.Validate(); verr != nil {
			t.Fatalf("Parse accepted a config that fails Validate: %v", verr)
		}
	})
}
