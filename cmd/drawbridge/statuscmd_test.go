package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
)

// TestStatusCommand: after 8 good requests and 2 answered 500, 'drawbridge
// status' prints the route's and the target's success ratio, rate and
// latency from /status.json, with the admin token from a file; without the
// token it says why it failed; --watch redraws until interrupted.
func TestStatusCommand(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/boom") {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(be.Close)
	target := strings.TrimPrefix(be.URL, "http://")
	tokenFile := writeFile(t, "token", "s3cret-token-0123456789\n")
	yaml := strings.Replace(gatewayYAML(fmt.Sprintf("[%q]", target), ""),
		`admin: {address: "{{ADMIN}}"}`, `admin: {address: "{{ADMIN}}", token_file: "`+tokenFile+`"}`, 1)
	yaml = strings.Replace(yaml, "retries: {attempts: 2,", "retries: {attempts: 1,", 1)
	lg := startLive(t, yaml)
	for i := range 10 {
		path := "/api/ok"
		if i%5 == 4 {
			path = "/api/boom"
		}
		httpGet(t, lg.edge+path)
	}

	code, out, stderr := runCLI(t, "status", "--admin", lg.admin, "--token-file", tokenFile)
	if code != 0 {
		t.Fatalf("status: %d %s", code, stderr)
	}
	t.Logf("drawbridge status:\n%s", out)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^drawbridge \S+  ready  up \d+s  at `),
		regexp.MustCompile(`(?m)^ROUTE\s+SUCCESS\s+RPS\s+P50\s+P95\s+P99\s+SUCCESS 5m\s+RPS 5m$`),
		regexp.MustCompile(`(?m)^edge/api\s+80\.00%\s+\d+\.\d\s+\d+\.\dms\s+\S+ms\s+\S+ms\s+80\.00%\s+\d+\.\d$`),
		regexp.MustCompile(`(?m)^TARGET\s+SUCCESS`),
		regexp.MustCompile(`(?m)^app/` + regexp.QuoteMeta(target) + `\s+80\.00%\s`),
	} {
		if !want.MatchString(out) {
			t.Errorf("output lacks %s", want)
		}
	}

	if code, _, stderr := runCLI(t, "status", "--admin", lg.admin); code != 1 || !strings.Contains(stderr, "401") || !strings.Contains(stderr, "--token-file") {
		t.Errorf("without the token: %d %q", code, stderr)
	}
	if code, _, stderr := runCLI(t, "status", "--admin", "http://"+drawtest.FreeAddr(t)); code != 1 || !strings.Contains(stderr, "connection refused") {
		t.Errorf("no gateway there: %d %q", code, stderr)
	}

	// --watch runs until interrupted: interrupt it once it has drawn three
	// screens (or after a bound, which fails the count below).
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	watch := &screenCounter{enough: 3, done: cancel}
	var errb bytes.Buffer
	if code := dispatch(ctx, []string{"status", "--admin", lg.admin, "--token-file", tokenFile, "--watch", "--interval", "100ms"}, watch, &errb); code != 0 {
		t.Fatalf("status --watch: %d %s", code, errb.String())
	}
	if n := strings.Count(watch.String(), clearScreen); n < 2 || strings.Count(watch.String(), "edge/api") != n {
		t.Errorf("--watch drew %d screens (%d with the route), want at least 2, each with it", n, strings.Count(watch.String(), "edge/api"))
	}
}

const clearScreen = "\x1b[H\x1b[2J"

// screenCounter collects what --watch draws and calls done once it has
// drawn enough screens, the last one to its route line.
type screenCounter struct {
	bytes.Buffer
	enough int
	done   func()
}

func (s *screenCounter) Write(p []byte) (int, error) {
	n, err := s.Buffer.Write(p)
	if n := strings.Count(s.String(), clearScreen); n >= s.enough && strings.Count(s.String(), "edge/api") >= n {
		s.done() // the last screen is complete too
	}
	return n, err
}
