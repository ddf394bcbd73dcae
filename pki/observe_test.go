package pki

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
	"github.com/drawbridge-proxy/drawbridge/pki/ca"
	"github.com/drawbridge-proxy/drawbridge/pki/cert"
	"github.com/drawbridge-proxy/drawbridge/pki/part"
	"github.com/drawbridge-proxy/drawbridge/pki/pkitest"
)

// TestListenerCloseLeaksNothing closes a Listener with a handshake stuck
// in progress and checks every goroutine it started has ended.
func TestListenerCloseLeaksNothing(t *testing.T) {
	p := newTestPKI(t, testConfig(t), nil)
	api := p.manage(t, "api")
	srv, err := p.mgr.ServerConfig(cert.ServerOptions{Identity: api, Mutual: true})
	if err != nil {
		t.Fatal(err)
	}
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := p.mgr.Listener(inner, srv, cert.ListenerOptions{HandshakeTimeout: time.Minute})
	// A client that connects and never speaks: its handshake is pending.
	stuck, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	time.Sleep(50 * time.Millisecond) // let the accept loop pick it up
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ln.Close(); err != nil {
		t.Errorf("second Close: %v, want nil (idempotent)", err)
	}
	if _, err := ln.Accept(); err == nil {
		t.Error("Accept after Close succeeded")
	}
}

// TestMetricsAndLogs checks the metric families a running PKI exports, that
// certmagic's logs reach the slog handler, and that no secret (passphrase,
// private key) appears in the log stream.
func TestMetricsAndLogs(t *testing.T) {
	logs := &drawtest.Buffer{}
	cfg := testConfig(t)
	clock := drawtest.NewClock()
	p := newTestPKI(t, cfg, clock.Now)
	// Rebuild the Manager with a logger, on the same storage and CA.
	_ = p.mgr.Close()
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m, err := cert.NewManager(cfg.Manager(), ca.NewIssuer(p.ca), p.storage, part.Deps{Logger: logger, Registerer: p.reg, Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	p.mgr = m
	api := p.manage(t, "api")
	web := p.manage(t, "web")
	if err := p.ca.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv, _ := m.ServerConfig(cert.ServerOptions{Identity: api, Mutual: true})
	addr := serveTLS(t, m, srv)
	other := pkitest.NewCA(t, "drawbridge.internal")
	bad := &tls.Config{RootCAs: p.ca.TrustBundle().Pool(), ServerName: "x", InsecureSkipVerify: true, //nolint:gosec // test client
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { c := other.Leaf(t, "web"); return &c, nil }}
	_ = drawtest.DialGreeting(addr, bad)
	waitCount(t, p, cert.ReasonUnknownAuthority, 1)
	_ = web

	mfs, err := p.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]bool{}
	for _, mf := range mfs {
		for _, mm := range mf.GetMetric() {
			var labels []string
			for _, l := range mm.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			series[mf.GetName()+"{"+strings.Join(labels, ",")+"}"] = true
		}
	}
	for _, want := range []string{
		"drawbridge_pki_certificate_expiry_timestamp_seconds{kind=leaf,name=spiffe://drawbridge.internal/api}",
		"drawbridge_pki_certificate_expiry_timestamp_seconds{kind=intermediate,name=current}",
		"drawbridge_pki_certificate_expiry_timestamp_seconds{kind=root,name=active}",
		"drawbridge_pki_certificate_expiry_timestamp_seconds{kind=root,name=retiring}",
		"drawbridge_pki_certificates_issued_total{kind=leaf,via=local}",
		"drawbridge_pki_certificates_issued_total{kind=root,via=local}",
		"drawbridge_pki_leaf_renewals_total{operation=obtain,result=success}",
		"drawbridge_pki_handshake_failures_total{reason=unknown_authority}",
	} {
		if !series[want] {
			t.Errorf("missing series %s", want)
		}
	}

	out := logs.String()
	if !strings.Contains(out, `"component":"certmagic"`) {
		t.Errorf("certmagic's logs did not reach the slog handler:\n%s", out)
	}
	if !strings.Contains(out, `"reason":"unknown_authority"`) {
		t.Error("handshake refusal not logged with its reason")
	}
	pass, _ := os.ReadFile(cfg.PassphraseFile)
	for _, secret := range []string{"PRIVATE KEY", strings.TrimSpace(string(pass))} {
		if strings.Contains(out, secret) {
			t.Errorf("logs contain a secret (%q)", secret[:8])
		}
	}
}

// TestCertmagicStepsAtDebug: certmagic's per-step lock and obtain lines are
// debug, its result lines stay info.
func TestCertmagicStepsAtDebug(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		var b bytes.Buffer
		z := part.Zap(slog.New(slog.NewJSONHandler(&b, &slog.HandlerOptions{Level: level}))).Named("obtain")
		for _, msg := range []string{"acquiring lock", "lock acquired", "obtaining certificate", "certificate obtained successfully", "releasing lock"} {
			z.Info(msg)
		}
		z.Error("could not get certificate from issuer")
		got := b.String()
		if !strings.Contains(got, `"level":"INFO","msg":"certificate obtained successfully"`) || !strings.Contains(got, `"level":"ERROR"`) {
			t.Errorf("at %v: results missing:\n%s", level, got)
		}
		steps := strings.Count(got, `"level":"DEBUG"`)
		if want := map[slog.Level]int{slog.LevelInfo: 0, slog.LevelDebug: 4}[level]; steps != want {
			t.Errorf("at %v: %d step lines, want %d:\n%s", level, steps, want, got)
		}
	}
}
