package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/cmd/drawbridge/internal/config"
	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
	"github.com/drawbridge-proxy/drawbridge/pki/ca"
	"github.com/drawbridge-proxy/drawbridge/pki/cert"
	"github.com/drawbridge-proxy/drawbridge/pki/identity"
	"github.com/drawbridge-proxy/drawbridge/pki/part"
	"github.com/drawbridge-proxy/drawbridge/pki/store"
)

// tlsGateway is an in-process gateway whose data plane is mutual TLS end
// to end: clients -> mutual listeners -> an https upstream that requires
// drawbridge's certificate, all from the gateway's own CA.
type tlsGateway struct {
	gw        *gateway
	pki       *gatewayPKI
	cfg       *config.File
	http, tcp string
	clientTLS *tls.Config
	stateDir  string
}

func startTLSGateway(t *testing.T, leafLifetime string, pkiExtra ...string) *tlsGateway {
	t.Helper()
	backendLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { backendLn.Close() })
	echo := drawtest.Echo(t)
	tg := &tlsGateway{http: drawtest.FreeAddr(t), tcp: drawtest.FreeAddr(t)}
	section := pkiSection(t, fmt.Sprintf(`  check_interval: 1s
  leaf_lifetime: %s
  intermediate_lifetime: 1h
  root_lifetime: 10h
  root_rotate_before: 2h
`, leafLifetime)+strings.Join(pkiExtra, ""))
	yaml := fmt.Sprintf(`
admin: {address: "{{ADMIN}}"}
%s
listeners:
  internal:
    address: %q
    tls: {mode: mutual, names: [gw, localhost]}
    routes: [{upstream: app}]
  db:
    address: %q
    protocol: tcp
    tls: {mode: mutual, names: [gw-db, localhost]}
    routes: [{upstream: echo}]
upstreams:
  app:
    protocol: https
    targets: [%q]
    tls: {identity: "spiffe://drawbridge.internal/backend"}
  echo: {protocol: tcp, targets: [%q]}
`, section, tg.http, tg.tcp, backendLn.Addr().String(), echo)
	yaml = strings.ReplaceAll(yaml, "{{ADMIN}}", drawtest.FreeAddr(t))
	f, err := config.Parse("tls.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	tg.cfg, tg.stateDir = f, f.PKI.StateDir
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- serveWith(ctx, f, io.Discard, hooks{
			pkiReady: func(gp *gatewayPKI) error {
				tg.pki = gp
				return serveBackend(ctx, gp, backendLn, &tg.clientTLS)
			},
			ready: func(gw *gateway) { tg.gw = gw; close(ready) },
		})
	}()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("serve: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	drawtest.WaitFor(t, "gateway ready", func() bool { return tg.gw.proxy.Ready() })
	return tg
}

// serveBackend serves an https backend with identity "backend" that
// admits only drawbridge, and makes the TLS config of a client with
// identity "client"; both certificates are managed (renewed) by the
// gateway's Manager.
func serveBackend(ctx context.Context, gp *gatewayPKI, ln net.Listener, client **tls.Config) error {
	m := gp.pki.Manager
	td := m.TrustDomain()
	backend, clientID := identity.MustNew(td, "backend"), identity.MustNew(td, "client")
	for _, id := range []identity.ID{backend, clientID} {
		if err := m.Manage(ctx, id, nil); err != nil {
			return err
		}
	}
	allow, _ := identity.NewAllowList([]string{gp.tls.Own().String()})
	srvCfg, err := m.ServerConfig(cert.ServerOptions{Identity: backend, Mutual: true, Allow: allow, NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.Header.Get("X-Drawbridge-Identity"))
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(m.Listener(ln, srvCfg, cert.ListenerOptions{})) }()
	context.AfterFunc(ctx, func() { _ = srv.Close() })
	*client, err = m.ClientConfig(cert.ClientOptions{Identity: clientID, ServerName: "localhost", NextProtos: []string{"h2", "http/1.1"}})
	return err
}

// traffic sends requests through the gateway until stopped: three clients
// open a new connection per request, one keeps its connection.
type traffic struct {
	ok, failed atomic.Int64
	firstErr   atomic.Value
	stop       chan struct{}
	wg         sync.WaitGroup
}

func startTraffic(tg *tlsGateway) *traffic {
	tr := &traffic{stop: make(chan struct{})}
	for i := 0; i < 4; i++ {
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: tg.clientTLS.Clone(), DisableKeepAlives: i > 0, ForceAttemptHTTP2: true,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, tg.http)
			},
		}}
		tr.wg.Go(func() {
			for {
				select {
				case <-tr.stop:
					return
				case <-time.After(5 * time.Millisecond):
				}
				resp, err := client.Get("https://localhost/")
				if err == nil {
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK || string(body) != "spiffe://drawbridge.internal/client" {
						err = fmt.Errorf("status %d, body %q", resp.StatusCode, body)
					}
				}
				if err != nil {
					tr.failed.Add(1)
					tr.firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				tr.ok.Add(1)
			}
		})
	}
	return tr
}

func (tr *traffic) finish(t *testing.T, what string) {
	t.Helper()
	close(tr.stop)
	tr.wg.Wait()
	if tr.failed.Load() > 0 || tr.ok.Load() < 50 {
		t.Errorf("%s: %d requests ok, %d failed (first: %v)", what, tr.ok.Load(), tr.failed.Load(), tr.firstErr.Load())
	}
	t.Logf("%s: %d requests, none failed", what, tr.ok.Load())
}

// openRelay opens a relayed connection through the tcp listener that must
// outlive renewals and trust bundle changes; check pings through it.
func openRelay(t *testing.T, tg *tlsGateway) (check func() error) {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", tg.tcp, tg.clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return func() error {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, "ping"); err != nil {
			return err
		}
		buf := make([]byte, 4)
		_, err := io.ReadFull(c, buf)
		return err
	}
}

func leafOf(tg *tlsGateway, name string) cert.HeldCert {
	for _, h := range tg.pki.pki.Manager.Held() {
		if h.Identity == "spiffe://drawbridge.internal/"+name {
			return h
		}
	}
	return cert.HeldCert{}
}

// TestRenewalAndRotationUnderTraffic runs the composed gateway with
// one-minute leaves under continuous traffic (new connections and a kept
// one, over mutual TLS on both hops): certmagic renews the listener's,
// the client's and the backend's leaves, then a root rotation made by
// another process (as `drawbridge ca rotate` is) reaches the gateway and
// every leaf is renewed under the new root. No request may fail, and a
// connection opened at the start is still relaying at the end.
func TestRenewalAndRotationUnderTraffic(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a renewal of one-minute leaves (about 40s)")
	}
	tg := startTLSGateway(t, "1m")
	relay := openRelay(t, tg)
	first := leafOf(tg, "gw")
	tr := startTraffic(tg)

	deadline := time.Now().Add(70 * time.Second)
	for !leafOf(tg, "gw").NotBefore.After(first.NotBefore) {
		if time.Now().After(deadline) {
			t.Fatal("the listener's leaf was not renewed within 70s")
		}
		if err := relay(); err != nil {
			t.Fatalf("the open relay broke: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	time.Sleep(time.Second)
	tr.finish(t, "leaf renewal")

	tr = startTraffic(tg)
	// Another process on the state dir rotates the root.
	ctx := context.Background()
	st, err := store.OpenStorage(ctx, tg.stateDir, []byte(testPassphrase))
	if err != nil {
		t.Fatal(err)
	}
	other, err := ca.Open(ctx, tg.cfg.PKI.Config.CA(), st, part.Deps{}, ca.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	drawtest.WaitFor(t, "the gateway to take the two-root bundle", func() bool {
		return len(tg.pki.pki.Manager.TrustBundle().Roots()) == 2
	})
	if err := tg.pki.pki.Manager.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	if iss := leafOf(tg, "gw").Issuer; !strings.Contains(iss, "G2") {
		t.Errorf("after the rotation the listener's leaf is issued by %q, want the G2 intermediate", iss)
	}
	time.Sleep(2 * time.Second)
	tr.finish(t, "root rotation")
	if err := relay(); err != nil {
		t.Errorf("the relay opened before the renewal and the rotation broke: %v", err)
	}
}
