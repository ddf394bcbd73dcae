package statusview

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/telemetry/status"
)

// TestFetchAndPrint: the Doc Fetch decodes (with the bearer token) is the
// screen Print draws: the header, the problems, the route table with its
// ratios and latencies, and the empty target table.
func TestFetchAndPrint(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer t0ken" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte(`{"version":"v1","ready":true,"started":"2026-01-01T00:00:00Z","generated":"2026-01-01T00:01:30Z",
			"problems":["target app/a:1 is down"],
			"traffic":[{"kind":"route","group":"edge","name":"api",
				"last_1m":{"requests":10,"rps":0.2,"success_ratio":0.8,"p50_ns":2500000,"p95_ns":45000000,"p99_ns":1500000000},
				"last_5m":{"requests":0}}]}`))
	}))
	t.Cleanup(srv.Close)
	c := srv.Client()
	if _, err := Fetch(context.Background(), c, srv.URL, ""); err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "--token-file") {
		t.Errorf("without the token: %v", err)
	}
	d, err := Fetch(context.Background(), c, srv.URL, "t0ken")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	Print(&b, d)
	out := b.String()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^drawbridge v1  ready  up 1m30s  at `),
		regexp.MustCompile(`(?m)^1 problem\(s\):\n  ! target app/a:1 is down$`),
		regexp.MustCompile(`(?m)^edge/api\s+80\.00%\s+0\.2\s+2\.5ms\s+45ms\s+1\.50s\s+-\s+0\.0$`),
		regexp.MustCompile(`(?m)^target: no requests in the last 15 minutes$`),
	} {
		if !want.MatchString(out) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}
}

func TestLatencyAndRatio(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		n    int64
		want string
	}{{time.Second, 0, "-"}, {1234 * time.Microsecond, 1, "1.2ms"}, {250 * time.Millisecond, 1, "250ms"}, {2500 * time.Millisecond, 1, "2.50s"}} {
		if got := latency(c.d, c.n); got != c.want {
			t.Errorf("latency(%s, %d) = %q, want %q", c.d, c.n, got, c.want)
		}
	}
	if got := ratio(status.Window{}); got != "-" {
		t.Errorf("ratio without requests: %q", got)
	}
	if got := ratio(status.Window{Requests: 3, Success: 2.0 / 3}); got != "66.67%" {
		t.Errorf("ratio: %q", got)
	}
}
