package imagetest

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite Dockerfile.buildkit from the Dockerfile")

// buildkitMarker is a comment in the Dockerfile whose flags go on the RUN instruction right below it in the BuildKit
// variant. The classic builder rejects every RUN flag, so the Dockerfile itself carries them only as comments.
var buildkitMarker = regexp.MustCompile(`^# buildkit: (--\S+(?: --\S+)*)$`)

const generatedHeader = "# Code generated from Dockerfile by `go test ./deploy/imagetest -run TestDockerfileBuildkit -update`; DO NOT EDIT.\n" +
	"# The BuildKit variant of the Dockerfile: its \"# buildkit:\" comments are RUN flags here. Build it with BuildKit only:\n" +
	"#   docker buildx build -f Dockerfile.buildkit .    or, in a compose file, build.dockerfile: Dockerfile.buildkit\n\n"

// buildkitDockerfile returns the BuildKit variant of the Dockerfile src: each marker line is dropped and its flags are
// inserted after RUN on the next line, which must start a RUN instruction.
func buildkitDockerfile(src []byte) ([]byte, error) {
	lines := strings.SplitAfter(string(src), "\n")
	var out strings.Builder
	out.WriteString(generatedHeader)
	var flags string
	for i, line := range lines {
		if line == "" { // after the final newline
			break
		}
		text := strings.TrimRight(line, "\n")
		if m := buildkitMarker.FindStringSubmatch(text); m != nil {
			if flags != "" {
				return nil, fmt.Errorf("line %d: two buildkit markers in a row; put all flags on one", i+1)
			}
			flags = m[1]
			continue
		}
		if strings.HasPrefix(text, "# buildkit:") {
			return nil, fmt.Errorf("line %d: malformed marker %q, want \"# buildkit: --flag ...\"", i+1, text)
		}
		if flags != "" {
			rest, ok := strings.CutPrefix(line, "RUN ")
			if !ok {
				return nil, fmt.Errorf("line %d: a buildkit marker must be followed by a RUN line, got %q", i+1, text)
			}
			line = "RUN " + flags + " " + rest
			flags = ""
		}
		out.WriteString(line)
	}
	if flags != "" {
		return nil, fmt.Errorf("the Dockerfile ends with a buildkit marker")
	}
	return []byte(out.String()), nil
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root not found from the package directory: %v", err)
	}
	return root
}

func TestDockerfileBuildkit(t *testing.T) {
	root := repoRoot(t)
	src, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := buildkitDockerfile(src)
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	if !bytes.Contains(want, []byte("RUN --mount=type=cache")) {
		t.Errorf("the generated BuildKit variant has no cache mount; the Dockerfile lost its \"# buildkit:\" markers")
	}
	path := filepath.Join(root, "Dockerfile.buildkit")
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (generate it with -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("Dockerfile.buildkit is stale: run `go test ./deploy/imagetest -run TestDockerfileBuildkit -update`")
	}
}

// TestDockerfileClassic checks what would break the classic builder or a machine without a registry: RUN flags, a
// syntax directive (it pulls a frontend image), heredocs and COPY --link (this engine's BuildKit lacks them too).
func TestDockerfileClassic(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(repoRoot(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name string
		re   *regexp.Regexp
	}{
		{"RUN flag (the classic builder rejects it)", regexp.MustCompile(`(?m)^RUN\s+--`)},
		{"syntax directive (pulls the frontend image)", regexp.MustCompile(`(?im)^#\s*syntax\s*=`)},
		{"heredoc", regexp.MustCompile(`(?m)^(RUN|COPY)\b.*<<-?["']?[A-Za-z]`)},
		{"COPY --link", regexp.MustCompile(`(?m)^COPY\b.*--link`)},
	}
	for _, c := range checks {
		if loc := c.re.FindIndex(src); loc != nil {
			line := bytes.Count(src[:loc[0]], []byte("\n")) + 1
			t.Errorf("Dockerfile:%d: %s", line, c.name)
		}
	}
}

func TestBuildkitDockerfileErrors(t *testing.T) {
	tests := []struct {
		name, src, wantErr string
	}{
		{"marker before a non-RUN line", "FROM x\n# buildkit: --mount=type=cache,target=/c\nCOPY . .\n", "must be followed by a RUN"},
		{"marker at the end", "FROM x\n# buildkit: --mount=type=cache,target=/c\n", "ends with a buildkit marker"},
		{"two markers", "# buildkit: --a\n# buildkit: --b\nRUN x\n", "two buildkit markers"},
		{"malformed marker", "# buildkit: mount=x\nRUN x\n", "malformed marker"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := buildkitDockerfile([]byte(tt.src))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
	got, err := buildkitDockerfile([]byte("FROM x\n# buildkit: --mount=type=cache,target=/c\nRUN go build \\\n\t./...\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := generatedHeader + "FROM x\nRUN --mount=type=cache,target=/c go build \\\n\t./...\n"
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
