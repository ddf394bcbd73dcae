package metrics

import (
	"crypto/x509"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the PKI's Prometheus collectors. A nil *Metrics records
// nothing, so callers never check. Labels are bounded: kinds and reasons
// are fixed sets, leaf names are the identities this process manages.
type Metrics struct {
	expiry            *prometheus.GaugeVec
	renewAt           *prometheus.GaugeVec // Renewal point, same labels as expiry
	check             *prometheus.GaugeVec // seconds to the next renewal check, same labels
	issued            *prometheus.CounterVec
	issueFailures     *prometheus.CounterVec
	renewals          *prometheus.CounterVec
	handshakeFailures *prometheus.CounterVec
	enrollments       *prometheus.CounterVec
	caUnreachable     prometheus.Gauge
}

// New registers the collectors with reg; nil reg gives nil metrics.
// Collectors already registered (by a CA and a Manager sharing reg) are
// reused.
func New(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &Metrics{
		expiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "drawbridge_pki_certificate_expiry_timestamp_seconds",
			Help: "Expiry (Unix time) of each held certificate: kind is leaf, intermediate or root; name is the identity (leaf), current (intermediate), active or retiring (root).",
		}, []string{"kind", "name"}),
		renewAt: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "drawbridge_pki_certificate_renewal_timestamp_seconds",
			Help: "Renewal point (Unix time) of each held certificate that is renewed: renewal_ratio of its life left (leaves, intermediate), root_rotate_before its expiry (active root), a third of its life left (certificate files, renewed by their owner). No series for a retiring root.",
		}, []string{"kind", "name"}),
		check: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "drawbridge_pki_certificate_check_interval_seconds",
			Help: "How often the renewal of each held certificate is checked (pki.check_interval; a minute for certificate files): a renewal is overdue two checks past its renewal point.",
		}, []string{"kind", "name"}),
		issued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drawbridge_pki_certificates_issued_total",
			Help: "Certificates issued by this CA, by kind (leaf, intermediate, root) and via (local, enrollment).",
		}, []string{"kind", "via"}),
		issueFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drawbridge_pki_issue_failures_total",
			Help: "Failed issuances by kind (leaf, intermediate, root).",
		}, []string{"kind"}),
		renewals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drawbridge_pki_leaf_renewals_total",
			Help: "Renewals and first issuances of held leaf certificates by certmagic, by operation (obtain, renew) and result (success, failure).",
		}, []string{"operation", "result"}),
		handshakeFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drawbridge_pki_handshake_failures_total",
			Help: "TLS handshakes refused, by reason.",
		}, []string{"reason"}),
		enrollments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drawbridge_pki_enrollments_total",
			Help: "Enrollment requests by method (token, certificate) and result (issued, refused, locked_out, rate_limited).",
		}, []string{"method", "result"}),
		caUnreachable: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "drawbridge_pki_ca_unreachable_since_timestamp_seconds",
			Help: "On an enrolling instance: when (Unix time) the CA's enrollment endpoint stopped answering; 0 while it answers.",
		}),
	}
	var err error
	m.expiry = register(reg, m.expiry, &err)
	m.renewAt = register(reg, m.renewAt, &err)
	m.check = register(reg, m.check, &err)
	m.issued = register(reg, m.issued, &err)
	m.issueFailures = register(reg, m.issueFailures, &err)
	m.renewals = register(reg, m.renewals, &err)
	m.handshakeFailures = register(reg, m.handshakeFailures, &err)
	m.enrollments = register(reg, m.enrollments, &err)
	m.caUnreachable = register(reg, m.caUnreachable, &err)
	if err != nil {
		return nil, err
	}
	return m, nil
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C, errp *error) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	*errp = errors.Join(*errp, err)
	return c
}

func (m *Metrics) SetExpiry(kind, name string, t time.Time) {
	if m == nil {
		return
	}
	m.expiry.WithLabelValues(kind, name).Set(float64(t.Unix()))
}

// SetRenewal sets the renewal point of a certificate and how often its
// Renewal is checked: with its expiry, the status page's rule of a
// certificate problem in alerting rules.
func (m *Metrics) SetRenewal(kind, name string, at time.Time, check time.Duration) {
	if m == nil {
		return
	}
	m.renewAt.WithLabelValues(kind, name).Set(float64(at.Unix()))
	m.check.WithLabelValues(kind, name).Set(check.Seconds())
}

// RenewalPoint is when a certificate renewed with ratio of its life left
// is due.
func RenewalPoint(c *x509.Certificate, ratio float64) time.Time {
	return c.NotAfter.Add(-time.Duration(float64(c.NotAfter.Sub(c.NotBefore)) * ratio))
}

func (m *Metrics) DeleteExpiry(kind, name string) {
	if m == nil {
		return
	}
	m.expiry.DeleteLabelValues(kind, name)
	m.renewAt.DeleteLabelValues(kind, name)
	m.check.DeleteLabelValues(kind, name)
}

func (m *Metrics) Issue(kind, via string) {
	if m == nil {
		return
	}
	m.issued.WithLabelValues(kind, via).Inc()
}

func (m *Metrics) IssueFailed(kind string) {
	if m == nil {
		return
	}
	m.issueFailures.WithLabelValues(kind).Inc()
}

func (m *Metrics) Renewal(op, result string) {
	if m == nil {
		return
	}
	m.renewals.WithLabelValues(op, result).Inc()
}

func (m *Metrics) HandshakeFailed(reason string) {
	if m == nil {
		return
	}
	m.handshakeFailures.WithLabelValues(reason).Inc()
}

func (m *Metrics) Enrollment(method, result string) {
	if m == nil {
		return
	}
	m.enrollments.WithLabelValues(method, result).Inc()
}

func (m *Metrics) SetCAUnreachable(since time.Time) {
	if m == nil {
		return
	}
	if since.IsZero() {
		m.caUnreachable.Set(0)
		return
	}
	m.caUnreachable.Set(float64(since.Unix()))
}
