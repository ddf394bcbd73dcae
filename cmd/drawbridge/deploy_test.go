package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
	"github.com/drawbridge-proxy/drawbridge/telemetry/audit"
)

const deployDir = "../../deploy"

// TestPrometheusAssets: the scrape config and the alerting rules load in
// Prometheus' own checker, and the rules' unit tests pass.
func TestPrometheusAssets(t *testing.T) {
	promtool := needTool(t, "promtool", "prometheus")
	// check config stats the credentials file, which only exists in a
	// deployment: check a copy that points at a stand-in.
	dir := t.TempDir()
	token := writeFile(t, "token", "0123456789abcdef0123")
	cfg, err := os.ReadFile(filepath.Join(deployDir, "prometheus/prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg = []byte(strings.ReplaceAll(string(cfg), "/run/secrets/drawbridge_admin_token", token))
	os.MkdirAll(filepath.Join(dir, "rules"), 0o755)
	os.WriteFile(filepath.Join(dir, "prometheus.yml"), cfg, 0o644)
	rules, _ := os.ReadFile(filepath.Join(deployDir, "prometheus/rules/drawbridge.rules.yml"))
	os.WriteFile(filepath.Join(dir, "rules/drawbridge.rules.yml"), rules, 0o644)

	for _, args := range [][]string{
		{"check", "config", filepath.Join(dir, "prometheus.yml")},
		{"check", "rules", filepath.Join(deployDir, "prometheus/rules/drawbridge.rules.yml")},
		{"test", "rules", filepath.Join(deployDir, "prometheus/tests/drawbridge.test.yml")},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// expectedLater are metric names the monitoring assets use that other
// parts of drawbridge will export; the test fails once they do, so the
// list shrinks as they land.
var expectedLater = map[string]string{}

// exercisedElsewhere are exported families that the gateway of this test
// does not produce a series of, with the test that does.
var exercisedElsewhere = map[string]string{
	"drawbridge_upstream_tls_handshakes_total":         "proxy TestUpstreamTLSHandshakeMetrics (a TLS upstream needs the PKI in cmd)",
	"drawbridge_upstream_retry_budget_exhausted_total": "the proxy's retry budget tests",
}

// ownFamilies are the families this part of drawbridge exports; the
// dashboard must show each of them.
var ownFamilies = []string{
	"drawbridge_build_info",
	"drawbridge_http_requests_total", "drawbridge_http_request_duration_seconds", "drawbridge_http_requests_in_flight",
	"drawbridge_http_request_body_bytes_total", "drawbridge_http_response_body_bytes_total",
	"drawbridge_listener_connections_total", "drawbridge_listener_connections_active",
	"drawbridge_upstream_attempt_duration_seconds", "drawbridge_upstream_errors_total",
	"drawbridge_upstream_tls_handshakes_total",
	"drawbridge_upstream_target_available", "drawbridge_upstream_target_in_flight",
	"drawbridge_audit_events_total", "drawbridge_audit_write_errors_total",
}

var metricNameRE = regexp.MustCompile(`\b(?:drawbridge|go|process)_[a-z0-9_]+\b`)

// exportedNames runs a gateway that exercises the families (a healthy and
// a dead target with health checks, the audit log) and returns the names a
// scrape shows, histogram series names included, and those of
// exercisedElsewhere.
func exportedNames(t *testing.T) map[string]bool {
	t.Helper()
	be := newOKBackend(t)
	auditPath := filepath.Join(t.TempDir(), "audit.log")
	yaml := twoTargets(be.addr(), drawtest.FreeAddr(t), fmt.Sprintf("audit: {path: %q}\n", auditPath)+pkiSection(t, ""))
	yaml = strings.Replace(yaml, "    retries:", "    health: {type: tcp, interval: 50ms, unhealthy_interval: 50ms}\n    retries:", 1)
	lg := startLive(t, yaml)
	for _, p := range []string{"/api/a", "/api/b", "/api/c", "/nowhere"} {
		httpGet(t, lg.edge+p)
	}
	resp, err := http.Post(lg.edge+"/api/upload", "text/plain", strings.NewReader("body bytes"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := lg.gw.obs.audit.Record(context.Background(), audit.Event{Name: "secret.read", Subject: "test"}); err != nil {
		t.Fatal(err)
	}
	var mfs []*dto.MetricFamily
	drawtest.WaitFor(t, "the first health checks", func() bool {
		var err error
		if mfs, err = lg.gw.obs.registry.Gather(); err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "drawbridge_upstream_target_healthy" && len(mf.GetMetric()) == 2 {
				return true
			}
		}
		return false
	})
	names := map[string]bool{}
	for n := range exercisedElsewhere {
		names[n] = true
	}
	for _, mf := range mfs {
		n := mf.GetName()
		names[n] = true
		if mf.GetType().String() == "HISTOGRAM" {
			names[n+"_bucket"], names[n+"_count"], names[n+"_sum"] = true, true, true
		}
	}
	return names
}

// TestMonitoringUsesExportedNames: every metric name in the alerting rules
// and the Grafana dashboard is one drawbridge exports (or one listed in
// expectedLater), and the dashboard shows every family this package owns.
func TestMonitoringUsesExportedNames(t *testing.T) {
	exported := exportedNames(t)
	for name, owner := range expectedLater {
		if exported[name] {
			t.Errorf("%s is exported now (by %s): remove it from expectedLater", name, owner)
		}
	}
	rules, err := os.ReadFile(filepath.Join(deployDir, "prometheus/rules/drawbridge.rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	dashboard := dashboardExprs(t)
	for file, text := range map[string]string{"rules": string(rules), "dashboard": strings.Join(dashboard, "\n")} {
		for _, name := range uniqueMatches(text) {
			if !exported[name] && expectedLater[name] == "" {
				t.Errorf("%s uses %s, which drawbridge does not export", file, name)
			}
		}
	}
	used := map[string]bool{}
	for _, name := range uniqueMatches(strings.Join(dashboard, "\n")) {
		used[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_count"), "_sum")] = true
	}
	for _, fam := range ownFamilies {
		if !exported[fam] {
			t.Errorf("%s was not exported by the exercised gateway", fam)
		}
		if !used[fam] {
			t.Errorf("the dashboard shows nothing of %s", fam)
		}
	}
}

// dashboardExprs returns every query of the dashboard, after checking
// that it is a Grafana dashboard whose panels all have queries.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(deployDir, "grafana/drawbridge.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string `json:"uid"`
		Panels []struct {
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	var exprs []string
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			exprs = append(exprs, q.Expr)
		}
	}
	if d.UID == "" || len(exprs) == 0 {
		t.Fatal("dashboard has no uid or no queries")
	}
	return exprs
}

func uniqueMatches(text string) []string {
	set := map[string]bool{}
	for _, m := range metricNameRE.FindAllString(text, -1) {
		set[m] = true
	}
	out := make([]string, 0, len(set))
	for m := range set {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}
