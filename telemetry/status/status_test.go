package status

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func sample() Snapshot {
	now := time.Date(2026, 11, 5, 12, 0, 0, 0, time.UTC)
	return Snapshot{
		Generated: now, Version: "v1", Started: now.Add(-time.Hour), Ready: true,
		Config: ConfigLoad{Source: "/etc/drawbridge.yaml", At: now.Add(-time.Hour), OK: true},
		Upstreams: []Upstream{{Name: "api", Targets: []Target{
			{Address: "api-1:8000", Healthy: true},
			{Address: "api-2:8000", Healthy: false},
			{Address: "api-3:8000", Healthy: true, Failures: 2, LastFailure: "<script>alert(1)</script>"},
		}}},
		Certs: []Cert{
			{Name: "edge server", NotAfter: now.Add(72 * time.Hour), RenewAt: now.Add(-time.Hour)},
			{Name: "root", NotAfter: now.Add(10 * 365 * 24 * time.Hour)},
		},
	}
}

func TestProblems(t *testing.T) {
	want := []string{
		"api target api-2:8000 is down",
		"api target api-3:8000 is failing",
		"certificate edge server was due for renewal 1h 0m ago and was not renewed; it expires in 3d 0h",
	}
	if diff := cmp.Diff(want, sample().Problems()); diff != "" {
		t.Errorf("Problems (-want +got):\n%s", diff)
	}
}

func TestPageRendersAndEscapes(t *testing.T) {
	p := New(func(*http.Request) Snapshot { return sample() }, Options{Refresh: 10 * time.Second})
	rec := httptest.NewRecorder()
	p.HTML().ServeHTTP(rec, httptest.NewRequest("GET", "/status", nil))
	body, _ := io.ReadAll(rec.Body)
	html := string(body)
	if rec.Code != 200 {
		t.Fatalf("got %d %q", rec.Code, html)
	}
	for _, want := range []string{
		`<meta http-equiv="refresh" content="10">`,
		`data-target="api/api-2:8000" data-state="down"`,
		`data-target="api/api-3:8000" data-state="failing"`,
		`&lt;script&gt;alert(1)&lt;/script&gt;`,
		"3 problems",
		"2/3 available",
	} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(html, "<script>") {
		t.Error("page contains a script element")
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q, want default-src 'none'", csp)
	}

	rec = httptest.NewRecorder()
	p.JSON().ServeHTTP(rec, httptest.NewRequest("GET", "/status.json", nil))
	var got Snapshot
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(sample(), got); diff != "" {
		t.Errorf("JSON round trip (-want +got):\n%s", diff)
	}
}

// TestCAUnreachable: an enrolling instance whose CA is away shows it in
// the problems and on the page, and stays ready.
func TestCAUnreachable(t *testing.T) {
	s := sample()
	since := s.Generated.Add(-90 * time.Second)
	s.CA = &CAContact{URL: "https://ca:8444/v1/pki/enroll", UnreachableSince: since, LastError: "dial tcp: connection refused"}
	want := "CA unreachable since 2026-11-05T11:58:30Z (certificates are kept until they expire; renewals retry)"
	if got := s.Problems(); !cmp.Equal(got[len(got)-2], want) {
		t.Errorf("Problems = %q, want %q among them", got, want)
	}
	p := New(func(*http.Request) Snapshot { return s }, Options{})
	rec := httptest.NewRecorder()
	p.HTML().ServeHTTP(rec, httptest.NewRequest("GET", "/status", nil))
	for _, want := range []string{"CA unreachable since 2026-11-05 11:58:30 UTC", "connection refused", `id="readiness" class="badge ok"`} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("page lacks %q", want)
		}
	}
	s.CA.UnreachableSince = time.Time{}
	rec = httptest.NewRecorder()
	p.HTML().ServeHTTP(rec, httptest.NewRequest("GET", "/status", nil))
	if !strings.Contains(rec.Body.String(), "reachable</span>") || strings.Contains(rec.Body.String(), "CA unreachable") {
		t.Error("a reachable CA is not shown as reachable")
	}
}

// TestCertProblem: the rule is the renewal point and the next check, never
// the lifetime alone.
func TestCertProblem(t *testing.T) {
	now := time.Date(2026, 11, 5, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	// A leaf of 24h issued a minute ago, renewed with a third of its life left.
	fresh := Cert{Name: "leaf a", NotBefore: now.Add(-time.Minute), NotAfter: now.Add(day - time.Minute),
		RenewAt: now.Add(16*time.Hour - time.Minute), CheckInterval: time.Minute}
	for _, tc := range []struct {
		name     string
		c        Cert
		want     string
		unusable bool
	}{
		{"a fresh 24h leaf", fresh, "", false},
		{"at its renewal point, one check late", with(fresh, func(c *Cert) { c.RenewAt = now.Add(-90 * time.Second) }), "", false},
		{"renewal keeps failing", with(fresh, func(c *Cert) { c.RenewAt = now.Add(-10 * time.Minute) }),
			"certificate leaf a was due for renewal 10m ago and was not renewed; it expires in 23h 59m", false},
		{"expires before the next check", with(fresh, func(c *Cert) { c.NotAfter = now.Add(30 * time.Second); c.RenewAt = time.Time{} }),
			"certificate leaf a expires in 30s, before the next renewal check", true},
		{"expired", with(fresh, func(c *Cert) { c.NotAfter = now.Add(-time.Hour) }), "certificate leaf a expired 1h 0m ago", true},
		{"not valid yet", with(fresh, func(c *Cert) { c.NotBefore = now.Add(time.Hour) }),
			"certificate leaf a is not valid yet (valid from 2026-11-05T13:00:00Z)", true},
		{"another CA's root, 3 days left, not ours to renew", Cert{Name: "trusted root CA", NotAfter: now.Add(3 * day)}, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.c.Problem(now); got != tc.want {
				t.Errorf("Problem: got %q, want %q", got, tc.want)
			}
			if got := tc.c.Unusable(now); got != tc.unusable {
				t.Errorf("Unusable: got %v, want %v", got, tc.unusable)
			}
		})
	}
}

func with(c Cert, f func(*Cert)) Cert {
	f(&c)
	return c
}

// TestTrafficSection: golden signals render as numbers and an inline SVG
// sparkline whose 5xx share is red, without any script.
func TestTrafficSection(t *testing.T) {
	s := sample()
	points := make([]Point, 90)
	points[88] = Point{Requests: 100}
	points[89] = Point{Requests: 50, Errors: 25}
	s.Traffic = []Traffic{
		{Kind: "route", Group: "edge", Name: "api", Points: points, PointInterval: 10 * time.Second,
			Last1m: Window{Requests: 150, RPS: 2.5, Success: 0.8333, P50: 2 * time.Millisecond, P95: 40 * time.Millisecond, P99: 1200 * time.Millisecond},
			Last5m: Window{Requests: 150, RPS: 0.5, Success: 0.8333}},
		{Kind: "target", Group: "api", Name: "api-1:8000", Points: make([]Point, 90), PointInterval: 10 * time.Second,
			Last1m: Window{Requests: 10, RPS: 1, Success: 1}, Last5m: Window{Requests: 10, RPS: 1, Success: 1}},
	}
	p := New(func(*http.Request) Snapshot { return s }, Options{})
	rec := httptest.NewRecorder()
	p.HTML().ServeHTTP(rec, httptest.NewRequest("GET", "/status", nil))
	html := rec.Body.String()
	for _, want := range []string{
		`<tr data-traffic="route:edge/api" class="bad">`,
		`class="num success-1m low">83.3%</td>`,
		`<td data-label="RPS 1m" class="num">2.5</td>`,
		`<td data-label="p99 1m" class="num">1200.0 ms</td>`,
		`<svg class="spark" role="img" viewBox="0 0 270 28" width="270" height="28" preserveAspectRatio="none" data-errors="25">`,
		`<title>edge/api: requests per 10s over the last 15 minutes, 5xx in red</title>`,
		`<rect class="req" x="264" y="0.0" width="2" height="28.0"/>`,
		`<rect class="err" x="267" y="21.0" width="2" height="7.0"/>`,
		`<tr data-traffic="target:api/api-1:8000">`,
		`<h3>Upstream targets</h3>`,
		`prefers-color-scheme: dark`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(html, "<script") {
		t.Error("the page has a script")
	}
}
