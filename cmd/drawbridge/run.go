package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/drawbridge-proxy/drawbridge/cmd/drawbridge/internal/admin"
	"github.com/drawbridge-proxy/drawbridge/cmd/drawbridge/internal/config"
	"github.com/drawbridge-proxy/drawbridge/cmd/drawbridge/internal/secret"
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
	if err := serveWith(ctx, f, stdout, hooks{configPath: *path}); err != nil {
		fmt.Fprintf(stderr, "run: %v\n", err)
		return 1
	}
	return 0
}

// gateway is a composed, bound drawbridge: the data plane, the admin
// listener, the PKI and the secrets they use.
type gateway struct {
	log     *slog.Logger
	logBuf  *telemetry.LineBuffer // flushed when the gateway stops
	level   *slog.LevelVar
	reload  *reloader // nil when the config did not come from a file
	proxy   *proxy.Server
	admin   *admin.Server
	health  *health.Gateway
	obs     *observability
	secrets *secret.Watcher
	pki     *gatewayPKI // nil without a pki section

	auditPath string

	shutdownDelay time.Duration // serving while not ready, before the drain
	stopping      atomic.Bool   // set when the shutdown delay starts

	upstreamChecksMu sync.Mutex      // guards upstreamChecks
	upstreamChecks   map[string]bool // readiness checks named upstream:<name> now registered
}

// hooks let a caller act at points of the composition.
type hooks struct {
	// pkiReady runs once the PKI is open, before the data plane is built
	// (the demo serves its apps with certificates from it).
	pkiReady func(*gatewayPKI) error
	// ready runs once everything is bound.
	ready func(*gateway)
	// configPath is the file the configuration came from; it is reloaded
	// on SIGHUP and when it changes. Empty: no reloads (the demo).
	configPath string
}

// newGateway composes and binds every part of a gateway from a loaded file.
func newGateway(ctx context.Context, f *config.File, logOut io.Writer, h hooks) (*gateway, error) {
	logBuf := telemetry.NewLineBuffer(logOut, 64<<10, f.Logging.FlushInterval)
	logCfg := f.Logging
	logCfg.Format = logCfg.FormatFor(logOut) // auto looks at the output, not at the buffer before it
	log, level, err := telemetry.NewLogger(logCfg, logBuf)
	if err != nil {
		logBuf.Close()
		return nil, err
	}
	obs, err := newObservability(f, log)
	if err != nil {
		logBuf.Close()
		return nil, err
	}
	gw := &gateway{log: log, level: level, obs: obs, auditPath: f.Audit.Path, logBuf: logBuf}
	if err := gw.compose(ctx, f, h); err != nil {
		gw.pki.close()
		obs.close()
		logBuf.Close()
		return nil, err
	}
	if h.configPath != "" {
		if gw.reload, err = newReloader(gw, h.configPath, f); err != nil {
			gw.pki.close()
			obs.close()
			logBuf.Close()
			return nil, err
		}
	}
	return gw, nil
}

func (gw *gateway) compose(ctx context.Context, f *config.File, h hooks) error {
	var err error
	if gw.secrets, err = newSecrets(f, gw.log, gw.obs); err != nil {
		return err
	}
	deps := proxy.Deps{Logger: gw.log, Registerer: gw.obs.registry, Tracing: gw.obs.tracing.Provider(), Secrets: secretSource{gw.secrets},
		Observer: goldenObserver{gw.obs.golden}}
	if f.PKI != nil {
		if gw.pki, err = openPKI(ctx, f, gw.log, gw.obs, gw.secrets); err != nil {
			return err
		}
		if h.pkiReady != nil {
			if err := h.pkiReady(gw.pki); err != nil {
				return err
			}
		}
	} else if gw.pki, err = openFilesTLS(f, gw.log, gw.obs); err != nil {
		return err
	}
	deps.TLS = gw.pki.tls.Proxy()
	gw.obs.certs = gw.pki.certs
	gw.obs.ca = gw.pki.caContact
	srv, err := proxy.New(f.Config, deps)
	if err != nil {
		return err
	}
	gw.proxy, gw.admin, gw.health = srv, admin.New(f.Admin.Address, gw.log), health.NewGateway()
	gw.shutdownDelay = f.ShutdownDelay
	gw.health.AddCheck("listeners", func() error {
		if gw.stopping.Load() {
			return fmt.Errorf("stopping: serving for shutdown_delay (%s), then draining", gw.shutdownDelay)
		}
		if !srv.Ready() {
			return fmt.Errorf("listeners are not serving (starting or draining)")
		}
		return nil
	})
	if gw.pki != nil {
		gw.health.AddCheck("certificates", gw.pki.ready)
	}
	gw.syncUpstreamChecks()
	gw.admin.Handle("GET /livez", gw.health.LivezHandler())
	gw.admin.Handle("GET /readyz", gw.health.ReadyzHandler())
	if err := gw.mountAdmin(f); err != nil {
		return err
	}
	if err := srv.Bind(); err != nil {
		return err
	}
	return gw.admin.Bind()
}

// run serves until ctx ends. The admin listener outlives the data plane's
// drain so /readyz reports it.
func (gw *gateway) run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	adminCtx, stopAdmin := context.WithCancel(context.WithoutCancel(ctx))
	dataCtx := gw.lameDuck(gctx)
	g.Go(func() error {
		defer stopAdmin()
		return gw.proxy.Run(dataCtx)
	})
	g.Go(func() error { return gw.admin.Run(adminCtx) })
	g.Go(func() error { return gw.secrets.Run(gctx) })
	if gw.reload != nil {
		g.Go(func() error { return gw.reload.run(gctx) })
	}
	if gw.pki != nil {
		g.Go(func() error { return gw.pki.run(gctx) })
	}
	defer gw.logBuf.Close() // last: the stop's own log lines go out too
	defer gw.obs.close()
	defer gw.pki.close()
	return g.Wait()
}

// lameDuck returns a context that ends shutdown_delay after ctx does: in
// between, /readyz fails while the listeners keep serving, so a load
// balancer stops sending before the drain closes them.
func (gw *gateway) lameDuck(ctx context.Context) context.Context {
	if gw.shutdownDelay <= 0 {
		return ctx
	}
	data, stop := context.WithCancel(context.WithoutCancel(ctx))
	go func() {
		defer stop()
		<-ctx.Done()
		gw.stopping.Store(true)
		gw.log.Info("stopping: not ready, serving until the delay ends", "shutdown_delay", gw.shutdownDelay.String())
		t := time.NewTimer(gw.shutdownDelay)
		defer t.Stop()
		<-t.C
	}()
	return data
}

// serve composes a gateway from f and runs it; ready, if not nil, is
// called once everything is bound.
func serve(ctx context.Context, f *config.File, logOut io.Writer, ready func(*gateway)) error {
	return serveWith(ctx, f, logOut, hooks{ready: ready})
}

func serveWith(ctx context.Context, f *config.File, logOut io.Writer, h hooks) error {
	gw, err := newGateway(ctx, f, logOut, h)
	if err != nil {
		return err
	}
	if h.ready != nil {
		h.ready(gw)
	}
	return gw.run(ctx)
}

// syncUpstreamChecks makes /readyz check exactly the upstreams the running
// configuration requires, after start and after each reload.
func (gw *gateway) syncUpstreamChecks() {
	srv := gw.proxy
	want := map[string]bool{}
	for _, name := range srv.RequiredUpstreams() {
		want["upstream:"+name] = true
		if !gw.health.HasCheck("upstream:" + name) {
			gw.health.AddCheck("upstream:"+name, func() error { return srv.UpstreamReady(name) })
		}
	}
	gw.upstreamChecksMu.Lock()
	defer gw.upstreamChecksMu.Unlock()
	for name := range gw.upstreamChecks {
		if !want[name] {
			gw.health.RemoveCheck(name)
		}
	}
	gw.upstreamChecks = want
}
