package metrics_test

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/drawbridge-proxy/drawbridge/pki/metrics"
)

// A nil *Metrics (no registerer) records nothing and never panics.
func TestNilMetricsRecordNothing(t *testing.T) {
	m, err := metrics.New(nil)
	if m != nil || err != nil {
		t.Fatalf("New(nil): got %v, %v; want nil, nil", m, err)
	}
	m.SetExpiry("leaf", "api", time.Now())
	m.SetRenewal("leaf", "api", time.Now(), time.Minute)
	m.DeleteExpiry("leaf", "api")
	m.Issue("leaf", "local")
	m.IssueFailed("leaf")
	m.Renewal("renew", "success")
	m.HandshakeFailed("unknown_ca")
	m.Enrollment("token", "issued")
	m.SetCAUnreachable(time.Now())
}

// A CA and a Manager sharing one registry share the collectors: what one
// counts, the registry shows once.
func TestSharedRegistryReusesCollectors(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	ca, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := metrics.New(reg)
	if err != nil {
		t.Fatalf("a second New on the same registry: %v", err)
	}
	ca.Issue("leaf", "local")
	mgr.Issue("leaf", "local")
	mgr.Issue("leaf", "enrollment")
	want := `
# HELP drawbridge_pki_certificates_issued_total Certificates issued by this CA, by kind (leaf, intermediate, root) and via (local, enrollment).
# TYPE drawbridge_pki_certificates_issued_total counter
drawbridge_pki_certificates_issued_total{kind="leaf",via="enrollment"} 1
drawbridge_pki_certificates_issued_total{kind="leaf",via="local"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "drawbridge_pki_certificates_issued_total"); err != nil {
		t.Error(err)
	}
}

// The gauges of a certificate come and go together.
func TestExpiryGaugesAndDelete(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	expiry := time.Unix(1_800_000_000, 0)
	m.SetExpiry("leaf", "api", expiry)
	m.SetRenewal("leaf", "api", expiry.Add(-8*time.Hour), time.Minute)
	m.SetCAUnreachable(time.Unix(1_700_000_000, 0))
	want := `
# HELP drawbridge_pki_certificate_check_interval_seconds How often the renewal of each held certificate is checked (pki.check_interval; a minute for certificate files): a renewal is overdue two checks past its renewal point.
# TYPE drawbridge_pki_certificate_check_interval_seconds gauge
drawbridge_pki_certificate_check_interval_seconds{kind="leaf",name="api"} 60
# HELP drawbridge_pki_certificate_expiry_timestamp_seconds Expiry (Unix time) of each held certificate: kind is leaf, intermediate or root; name is the identity (leaf), current (intermediate), active or retiring (root).
# TYPE drawbridge_pki_certificate_expiry_timestamp_seconds gauge
drawbridge_pki_certificate_expiry_timestamp_seconds{kind="leaf",name="api"} 1.8e+09
# HELP drawbridge_pki_certificate_renewal_timestamp_seconds Renewal point (Unix time) of each held certificate that is renewed: renewal_ratio of its life left (leaves, intermediate), root_rotate_before its expiry (active root), a third of its life left (certificate files, renewed by their owner). No series for a retiring root.
# TYPE drawbridge_pki_certificate_renewal_timestamp_seconds gauge
drawbridge_pki_certificate_renewal_timestamp_seconds{kind="leaf",name="api"} 1.7999712e+09
`
	names := []string{"drawbridge_pki_certificate_check_interval_seconds", "drawbridge_pki_certificate_expiry_timestamp_seconds", "drawbridge_pki_certificate_renewal_timestamp_seconds"}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	m.DeleteExpiry("leaf", "api")
	if n, err := testutil.GatherAndCount(reg, names...); err != nil || n != 0 {
		t.Errorf("after DeleteExpiry: %d series, %v; want none", n, err)
	}
	m.SetCAUnreachable(time.Time{})
	answering := `
# HELP drawbridge_pki_ca_unreachable_since_timestamp_seconds On an enrolling instance: when (Unix time) the CA's enrollment endpoint stopped answering; 0 while it answers.
# TYPE drawbridge_pki_ca_unreachable_since_timestamp_seconds gauge
drawbridge_pki_ca_unreachable_since_timestamp_seconds 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(answering), "drawbridge_pki_ca_unreachable_since_timestamp_seconds"); err != nil {
		t.Errorf("CA answering again: %v", err)
	}
}

func TestRenewalPoint(t *testing.T) {
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	c := &x509.Certificate{NotBefore: start, NotAfter: start.Add(24 * time.Hour)}
	if got, want := metrics.RenewalPoint(c, 1.0/3), start.Add(16*time.Hour); !got.Equal(want) {
		t.Errorf("a third of a day's life left: got %v, want %v", got, want)
	}
	if got := metrics.RenewalPoint(c, 0); !got.Equal(c.NotAfter) {
		t.Errorf("ratio 0: got %v, want the expiry %v", got, c.NotAfter)
	}
}
