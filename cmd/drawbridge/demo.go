package main

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/drawbridge-proxy/drawbridge/cmd/drawbridge/internal/config"
	"github.com/drawbridge-proxy/drawbridge/cmd/drawbridge/internal/demoapp"
)

//go:embed demo.yaml.tmpl
var demoConfigTemplate string

type demoOptions struct {
	edge, admin, stateDir string
}

func demoCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo [--edge ADDR] [--admin ADDR] [--state-dir DIR]",
		"Run a complete gateway on loopback with built-in demo services: a web page\n"+
			"and a JSON API, each behind drawbridge. No files are needed. Logs are JSON\n"+
			"lines on stdout; what to open is printed on stderr.", stderr)
	var o demoOptions
	fs.StringVar(&o.edge, "edge", "127.0.0.1:8443", "edge listener address")
	fs.StringVar(&o.admin, "admin", "127.0.0.1:9090", "admin listener address (/livez, /readyz)")
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
	if err := os.MkdirAll(o.stateDir, 0o700); err != nil {
		return fmt.Errorf("creating state directory: %w", err)
	}
	apps, err := demoapp.Start(ctx)
	if err != nil {
		return err
	}
	defer apps.Close()
	f, err := demoConfig(o, apps)
	if err != nil {
		return err
	}
	return serve(ctx, f, logOut, func(gw *gateway) {
		printBanner(banner, gw.proxy.Addr("edge").String(), gw.admin.Addr().String(), o.stateDir)
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
	err = tmpl.Execute(&b, map[string]string{
		"Edge": o.edge, "Admin": o.admin, "Web": apps.WebAddr, "API": apps.APIAddr,
	})
	if err != nil {
		return nil, err
	}
	return config.Parse("demo.yaml", []byte(b.String()))
}

func printBanner(w io.Writer, edge, admin, stateDir string) {
	host, port, _ := net.SplitHostPort(edge)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	base := "http://" + net.JoinHostPort(host, port)
	fmt.Fprintf(w, `
drawbridge demo is running.

  Open the web page:   %[1]s/
  Call the API:        curl -s %[1]s/api/hello
  List todos:          curl -s %[1]s/api/todos
  Break the API:       curl -s -X POST '%[1]s/api/chaos?seconds=15'
                       (health check, breaker and fallback take over; it heals by itself)
  Readiness:           curl -s http://%[2]s/readyz
  State directory:     %[3]s

Access logs are JSON lines on stdout. Press Ctrl-C to stop.

`, base, admin, stateDir)
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
