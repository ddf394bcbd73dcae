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
		Certs: []Cert{{Name: "edge server", NotAfter: now.Add(72 * time.Hour)}, {Name: "root", NotAfter: now.Add(10 * 365 * 24 * time.Hour)}},
	}
}

func TestProblems(t *testing.T) {
	want := []string{
		"api target api-2:8000 is down",
		"api target api-3:8000 is failing",
		"certificate edge server expires in 3d 0h",
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
