package cert

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/drawbridge-proxy/drawbridge/pki/handshake"
)

// Handshake refusal reasons: the bounded label set of
// drawbridge_pki_handshake_failures_total.
const (
	ReasonNoCertificate      = "no_certificate"
	ReasonUnknownAuthority   = "unknown_authority"
	ReasonExpired            = "expired"
	ReasonNotYetValid        = "not_yet_valid"
	ReasonBadKeyUsage        = "bad_key_usage"
	ReasonCAAsLeaf           = "ca_as_leaf"
	ReasonNameConstraint     = "name_constraint"
	ReasonInvalidCertificate = "invalid_certificate"
	ReasonNameMismatch       = "name_mismatch"
	ReasonNoIdentity         = "no_identity"
	ReasonForeignTrustDomain = "foreign_trust_domain"
	ReasonIdentityMismatch   = "identity_mismatch"
	ReasonIdentityNotAllowed = "identity_not_allowed"
	ReasonPeerRefused        = "peer_refused"
	ReasonProtocol           = "protocol"
	ReasonTimeout            = "timeout"
	ReasonClosed             = "closed"
	ReasonOther              = "other"
)

// classify maps a handshake or verification error to a reason.
func classify(err error, now time.Time) string {
	var ref *RefusalError
	var uae x509.UnknownAuthorityError
	var cie x509.CertificateInvalidError
	var hne x509.HostnameError
	var ne net.Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &ref):
		return ref.Reason
	case errors.As(err, &uae):
		return ReasonUnknownAuthority
	case errors.As(err, &cie):
		switch cie.Reason {
		case x509.Expired:
			if cie.Cert != nil && now.Before(cie.Cert.NotBefore) {
				return ReasonNotYetValid
			}
			return ReasonExpired
		case x509.IncompatibleUsage:
			return ReasonBadKeyUsage
		case x509.CANotAuthorizedForThisName:
			return ReasonNameConstraint
		case x509.NotAuthorizedToSign:
			return ReasonCAAsLeaf
		default:
			return ReasonInvalidCertificate
		}
	case errors.As(err, &hne):
		return ReasonNameMismatch
	case errors.As(err, &ne) && ne.Timeout():
		return ReasonTimeout
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, io.ErrUnexpectedEOF):
		return ReasonClosed
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "didn't provide a certificate"):
		return ReasonNoCertificate
	case strings.Contains(msg, "remote error"):
		return ReasonPeerRefused
	case strings.Contains(msg, "tls:"):
		return ReasonProtocol
	}
	return ReasonOther
}

// HandshakeFailed records a failed server-side handshake that crypto/tls
// refused before drawbridge's own checks ran (no certificate, unknown CA,
// expired...): it counts it by reason and logs it with the peer address.
// Refusals by drawbridge's own checks (RefusalError) were counted when
// made and are only logged. It returns the reason. Listener calls it for
// every failure; a caller doing its own handshakes should too.
func (m *Manager) HandshakeFailed(remote net.Addr, err error) string {
	reason := classify(err, m.now())
	addr := ""
	if remote != nil {
		addr = remote.String()
	}
	var ref *RefusalError
	if errors.As(err, &ref) {
		// Counted and logged (without the address) when refused.
		m.log.Debug("TLS handshake refused", "remote", addr, "reason", reason)
		return reason
	}
	m.metrics.HandshakeFailed(reason)
	level := slog.LevelWarn
	if reason == ReasonClosed || reason == ReasonTimeout {
		// Port scanners and health checks that only connect: not refusals.
		level = slog.LevelDebug
	}
	m.log.Log(context.Background(), level, "TLS handshake failed", "remote", addr, "reason", reason, "err", err)
	return reason
}

// ListenerOptions tune Listener.
type ListenerOptions struct {
	// HandshakeTimeout bounds each handshake. Zero: 10s.
	HandshakeTimeout time.Duration
	// MaxPending bounds handshakes in progress; more connections wait in
	// the kernel's accept queue. Zero: 1024.
	MaxPending int
}

// Listener wraps inner so that Accept returns only connections whose TLS
// handshake (with cfg) has succeeded, as *tls.Conn. Handshakes run
// concurrently, each bounded by a timeout, and every failure is counted
// and logged through HandshakeFailed. An http.Server serving it (Serve,
// not ServeTLS) sees finished handshakes, ALPN included.
func (m *Manager) Listener(inner net.Listener, cfg *tls.Config, opts ListenerOptions) net.Listener {
	if opts.MaxPending <= 0 {
		opts.MaxPending = 1024
	}
	return handshake.NewListener(inner, cfg, handshake.Options{
		Timeout:    opts.HandshakeTimeout,
		MaxPending: opts.MaxPending,
		Failed:     func(remote net.Addr, err error) { m.HandshakeFailed(remote, err) },
	})
}
