package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"golang.org/x/sync/errgroup"

	"github.com/drawbridge-proxy/drawbridge/cmd/drawbridge/internal/admin"
	"github.com/drawbridge-proxy/drawbridge/cmd/drawbridge/internal/config"
	"github.com/drawbridge-proxy/drawbridge/health"
	"github.com/drawbridge-proxy/drawbridge/proxy"
	"github.com/drawbridge-proxy/drawbridge/telemetry"
)

func runCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("run --config FILE",
		"Serve a configuration file until SIGINT or SIGTERM, then drain in-flight\n"+
			"requests for up to shutdown_grace and exit 0.", stderr)
	path := fs.String("config", "", "configuration file (YAML)")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if *path == "" {
		fmt.Fprintln(stderr, "run: --config FILE is required")
		return 2
	}
	f, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "run: %v\n", err)
		return 1
	}
	if err := serve(ctx, f, stdout, nil); err != nil {
		fmt.Fprintf(stderr, "run: %v\n", err)
		return 1
	}
	return 0
}

// gateway is a composed, bound drawbridge: the data plane and the admin listener.
type gateway struct {
	log    *slog.Logger
	proxy  *proxy.Server
	admin  *admin.Server
	health *health.Gateway
	obs    *observability

	auditPath string
}

// newGateway composes and binds every part of a gateway from a loaded file.
func newGateway(f *config.File, logOut io.Writer) (*gateway, error) {
	log, _, err := telemetry.NewLogger(f.Logging, logOut)
	if err != nil {
		return nil, err
	}
	obs, err := newObservability(f, log)
	if err != nil {
		return nil, err
	}
	gw, err := composeGateway(f, log, obs)
	if err != nil {
		obs.close()
		return nil, err
	}
	return gw, nil
}

func composeGateway(f *config.File, log *slog.Logger, obs *observability) (*gateway, error) {
	srv, err := proxy.New(f.Config, proxy.Deps{Logger: log, Registerer: obs.registry, Tracing: obs.tracing.Provider()})
	if err != nil {
		return nil, err
	}
	gw := &gateway{log: log, proxy: srv, admin: admin.New(f.Admin.Address, log), health: health.NewGateway(), obs: obs, auditPath: f.Audit.Path}
	gw.health.AddCheck("listeners", func() error {
		if !srv.Ready() {
			return fmt.Errorf("listeners are not serving (starting or draining)")
		}
		return nil
	})
	for _, name := range srv.RequiredUpstreams() {
		gw.health.AddCheck("upstream:"+name, func() error { return srv.UpstreamReady(name) })
	}
	gw.admin.Handle("GET /livez", gw.health.LivezHandler())
	gw.admin.Handle("GET /readyz", gw.health.ReadyzHandler())
	if err := gw.mountAdmin(f); err != nil {
		return nil, err
	}
	if err := srv.Bind(); err != nil {
		return nil, err
	}
	if err := gw.admin.Bind(); err != nil {
		return nil, err
	}
	return gw, nil
}

// run serves until ctx ends. The admin listener outlives the data plane's
// drain so /readyz reports it.
func (gw *gateway) run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	adminCtx, stopAdmin := context.WithCancel(context.WithoutCancel(ctx))
	g.Go(func() error {
		defer stopAdmin()
		return gw.proxy.Run(gctx)
	})
	g.Go(func() error { return gw.admin.Run(adminCtx) })
	defer gw.obs.close()
	return g.Wait()
}

// serve composes a gateway from f and runs it; ready, if not nil, is
// called once everything is bound.
func serve(ctx context.Context, f *config.File, logOut io.Writer, ready func(*gateway)) error {
	gw, err := newGateway(f, logOut)
	if err != nil {
		return err
	}
	if ready != nil {
		ready(gw)
	}
	return gw.run(ctx)
}
