package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	_ "embed"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	"github.com/drawbridge-proxy/drawbridge/cmd/drawbridge/internal/certfiles"
	"github.com/drawbridge-proxy/drawbridge/cmd/drawbridge/internal/config"
	"github.com/drawbridge-proxy/drawbridge/cmd/drawbridge/internal/demoapp"
	"github.com/drawbridge-proxy/drawbridge/internal/atomicfile"
	"github.com/drawbridge-proxy/drawbridge/pki/cert"
	"github.com/drawbridge-proxy/drawbridge/pki/identity"
)

//go:embed demo.yaml.tmpl
var demoConfigTemplate string

type demoOptions struct {
	edge, admin, stateDir string
	http                  string // the plain-HTTP listener that redirects to the edge; "" means a free loopback port
}

func demoCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo [--edge ADDR] [--http ADDR] [--admin ADDR] [--state-dir DIR]",
		"Run a complete gateway on loopback with built-in demo services: a web page\n"+
			"and a JSON API, each behind drawbridge. No files are needed. Logs go to\n"+
			"stdout (text on a terminal, JSON lines otherwise); what to open is printed\n"+
			"on stderr once the listeners serve.", stderr)
	var o demoOptions
	fs.StringVar(&o.edge, "edge", "127.0.0.1:8443", "edge listener address")
	fs.StringVar(&o.admin, "admin", "127.0.0.1:9090", "admin listener address (/livez, /readyz)")
	fs.StringVar(&o.http, "http", "127.0.0.1:8080", "plain-HTTP listener address, which redirects to the edge")
	fs.StringVar(&o.stateDir, "state-dir", "", "where state is kept (default: a per-user state directory)")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if err := runDemo(ctx, o, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 1
	}
	return 0
}

func runDemo(ctx context.Context, o demoOptions, logOut, banner io.Writer) error {
	if o.stateDir == "" {
		dir, err := defaultStateDir()
		if err != nil {
			return err
		}
		o.stateDir = dir
	}
	abs, err := filepath.Abs(o.stateDir)
	if err != nil {
		return err
	}
	o.stateDir = abs
	if err := os.MkdirAll(o.stateDir, 0o700); err != nil {
		return fmt.Errorf("creating state directory: %w", err)
	}
	if err := demoPassphrase(filepath.Join(o.stateDir, "passphrase")); err != nil {
		return err
	}
	apps, err := demoapp.Listen(ctx)
	if err != nil {
		return err
	}
	defer apps.Close()
	f, err := demoConfig(o, apps)
	if err != nil {
		return err
	}
	caFile := filepath.Join(o.stateDir, "ca.crt")
	return serveWith(ctx, f, logOut, hooks{
		pkiReady: func(gp *gatewayPKI) error { return startDemoApps(ctx, gp, apps, caFile) },
		ready: func(gw *gateway) {
			go func() {
				if waitServing(ctx, gw) {
					printBanner(banner, gw.proxy.Addr("edge").String(), gw.admin.Addr().String(), o.stateDir, caFile)
					printRedirectBanner(banner, gw.proxy.Addr("redirect").String())
				}
			}()
		},
	})
}

// waitServing waits until the listeners serve, then flushes the log lines
// queued so far, so the banner comes last, after them, and stays on screen.
// It returns false when ctx ended first.
func waitServing(ctx context.Context, gw *gateway) bool {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for !gw.proxy.Ready() {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
	_ = gw.logBuf.Flush()
	return true
}

// demoPassphrase generates the demo CA's passphrase once, 0600 in the
// state directory. Only the demo does this: beside the state it seals, a
// passphrase protects nothing against someone who can read the directory.
func demoPassphrase(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	if err := atomicfile.WriteBytes(path, atomicfile.Options{Mode: 0o600}, []byte(base64.StdEncoding.EncodeToString(b)+"\n")); err != nil {
		return fmt.Errorf("generating the demo passphrase: writing %s: %w", path, err)
	}
	return nil
}

// startDemoApps serves the demo services with mutual TLS from the demo CA:
// each presents its own identity and admits only drawbridge's. It also
// writes the trust bundle where the banner's curl line points.
func startDemoApps(ctx context.Context, gp *gatewayPKI, apps *demoapp.Apps, caFile string) error {
	m := gp.pki.Manager
	allow, err := identity.NewAllowList([]string{gp.tls.Own().String()})
	if err != nil {
		return err
	}
	if err := certfiles.WriteFile(caFile, m.TrustBundle().PEM(), 0o644, nil); err != nil {
		return err
	}
	return apps.Serve(func(service string) (*tls.Config, error) {
		id, err := identity.New(m.TrustDomain(), service)
		if err != nil {
			return nil, err
		}
		if err := m.Manage(ctx, id, nil); err != nil {
			return nil, err
		}
		return m.ServerConfig(cert.ServerOptions{Identity: id, Mutual: true, Allow: allow, Profile: cert.Internal,
			NextProtos: []string{"h2", "http/1.1"}})
	})
}

// demoConfig renders the embedded configuration for the demo services'
// addresses and loads it through the same loader as 'run'.
func demoConfig(o demoOptions, apps *demoapp.Apps) (*config.File, error) {
	tmpl, err := template.New("demo").Parse(demoConfigTemplate)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	httpAddr := o.http
	if httpAddr == "" {
		httpAddr = "127.0.0.1:0"
	}
	_, edgePort, err := net.SplitHostPort(o.edge)
	if err != nil {
		return nil, fmt.Errorf("--edge %q: %w", o.edge, err)
	}
	err = tmpl.Execute(&b, map[string]string{
		"Edge": o.edge, "Admin": o.admin, "Web": apps.WebAddr, "API": apps.APIAddr, "StateDir": o.stateDir,
		"HTTP": httpAddr, "EdgePort": edgePort,
	})
	if err != nil {
		return nil, err
	}
	return config.Parse("demo.yaml", []byte(b.String()))
}

func printBanner(w io.Writer, edge, admin, stateDir, caFile string) {
	host, port, _ := net.SplitHostPort(edge)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	// The certificate is for the name localhost: the CA issues no IP
	// addresses (its intermediate is name-constrained to exclude them).
	base := "https://" + net.JoinHostPort("localhost", port)
	curl := "curl -s --cacert " + caFile
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		curl += " --resolve " + net.JoinHostPort("localhost", port) + ":" + host
	}
	fmt.Fprintf(w, `
drawbridge demo is running, with HTTPS on the edge and mutual TLS to its services.

  Root certificate:    %[4]s   (the demo CA's trust bundle)
  Call the API:        %[5]s %[1]s/api/hello
  List todos:          %[5]s %[1]s/api/todos
  Break the API:       %[5]s -X POST '%[1]s/api/chaos?seconds=15'
                       (health check, breaker and fallback take over; it heals by itself)
  Open the web page:   %[1]s/  (import the root certificate, or accept the warning)
  Readiness:           curl -s http://%[2]s/readyz
  State directory:     %[3]s
                       (pki/ holds the CA, sealed with the generated passphrase file
                       beside it: for the demo only; a deployment reads it from a secret)

Logs and access logs go to stdout (logging.format auto: text on a terminal, JSON lines
otherwise). Status page: http://%[2]s/status, or 'drawbridge status --admin http://%[2]s'.
Press Ctrl-C to stop.

`, base, admin, stateDir, caFile, curl)
}

// printRedirectBanner adds the plain-HTTP listener and compression to the
// banner, once its address is known.
func printRedirectBanner(w io.Writer, httpAddr string) {
	_, port, _ := net.SplitHostPort(httpAddr)
	fmt.Fprintf(w, `  HTTP to HTTPS:       curl -si http://localhost:%[1]s/api/todos?done=1   (308 to the edge, path and query kept)
  Compression:         add -H 'Accept-Encoding: zstd' or --compressed to a curl line above (zstd, gzip)

`, port)
}

// defaultStateDir is $XDG_STATE_HOME/drawbridge, else ~/.local/state/drawbridge:
// per user, and never the current directory.
func defaultStateDir() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "drawbridge"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("finding a state directory (use --state-dir): %w", err)
	}
	return filepath.Join(home, ".local", "state", "drawbridge"), nil
}
