package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/drawbridge-proxy/drawbridge/cmd/drawbridge/internal/admin"
	"github.com/drawbridge-proxy/drawbridge/cmd/drawbridge/internal/statusview"
)

const statusSynopsis = `Print a running gateway's golden metrics in the terminal, from its admin
listener's /status.json: per route and per upstream target, the success ratio
(answers that are not 5xx), requests per second and p50/p95/p99 latency over
the last minute, and the success ratio and rate over five minutes; problems
first. With --watch it redraws every --interval until interrupted.`

// statusOptions are the flags of 'drawbridge status'.
type statusOptions struct {
	admin, tokenFile string
	watch            bool
	interval         time.Duration
}

func statusCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("status [--admin URL] [--token-file FILE] [--watch]", statusSynopsis, stderr)
	var o statusOptions
	fs.StringVar(&o.admin, "admin", "http://127.0.0.1:9090", "the admin listener's URL")
	fs.StringVar(&o.tokenFile, "token-file", os.Getenv("DRAWBRIDGE_ADMIN_TOKEN_FILE"),
		"file holding the admin token (admin.token_file), if the gateway has one; default $DRAWBRIDGE_ADMIN_TOKEN_FILE")
	fs.BoolVar(&o.watch, "watch", false, "redraw every --interval until interrupted")
	fs.DurationVar(&o.interval, "interval", 2*time.Second, "with --watch: how often to redraw")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if fs.NArg() > 0 || o.interval <= 0 {
		fs.Usage()
		return 2
	}
	var token string
	if o.tokenFile != "" {
		var err error
		if token, err = admin.ReadToken(o.tokenFile); err != nil {
			fmt.Fprintf(stderr, "status: %v\n", err)
			return 1
		}
	}
	client := &http.Client{Timeout: 5 * time.Second}
	url := strings.TrimSuffix(o.admin, "/") + "/status.json"
	for {
		snap, err := statusview.Fetch(ctx, client, url, token)
		if o.watch && ctx.Err() != nil {
			return 0 // interrupted mid-fetch: leave the last screen as it was
		}
		if err != nil && !o.watch {
			fmt.Fprintf(stderr, "status: %v\n", err)
			return 1
		}
		if o.watch {
			fmt.Fprint(stdout, "\x1b[H\x1b[2J") // home and clear: redraw in place
		}
		if err != nil {
			fmt.Fprintf(stdout, "%s  %v (retrying)\n", time.Now().Format(time.TimeOnly), err)
		} else {
			statusview.Print(stdout, snap)
		}
		if !o.watch {
			return 0
		}
		select {
		case <-ctx.Done():
			return 0
		case <-time.After(o.interval):
		}
	}
}
