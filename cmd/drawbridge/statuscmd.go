package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/drawbridge-proxy/drawbridge/cmd/drawbridge/internal/admin"
	"github.com/drawbridge-proxy/drawbridge/telemetry/status"
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
		snap, err := fetchStatus(ctx, client, url, token)
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
			printStatus(stdout, snap)
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

// statusDoc is /status.json: the snapshot and its problems.
type statusDoc struct {
	status.Snapshot
	Problems []string `json:"problems"`
}

func fetchStatus(ctx context.Context, c *http.Client, url, token string) (*statusDoc, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return nil, fmt.Errorf("%s: 401: the gateway has an admin token; give it with --token-file", url)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	var d statusDoc
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&d); err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	return &d, nil
}

// printStatus writes the summary: a header line, the problems, then one
// table of routes and one of targets, as linkerd viz stat lays them out.
func printStatus(w io.Writer, d *statusDoc) {
	ready := "ready"
	if !d.Ready {
		ready = "NOT READY"
	}
	fmt.Fprintf(w, "drawbridge %s  %s  up %s  at %s\n", d.Version, ready,
		d.Generated.Sub(d.Started).Round(time.Second), d.Generated.Local().Format(time.TimeOnly))
	if len(d.Problems) == 0 {
		fmt.Fprintln(w, "no problems")
	} else {
		fmt.Fprintf(w, "%d problem(s):\n", len(d.Problems))
		for _, p := range d.Problems {
			fmt.Fprintf(w, "  ! %s\n", p)
		}
	}
	printTraffic(w, "ROUTE", d.Routes())
	printTraffic(w, "TARGET", d.Targets())
}

func printTraffic(w io.Writer, title string, rows []status.Traffic) {
	fmt.Fprintln(w)
	if len(rows) == 0 {
		fmt.Fprintf(w, "%s: no requests in the last 15 minutes\n", strings.ToLower(title))
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "%s\tSUCCESS\tRPS\tP50\tP95\tP99\tSUCCESS 5m\tRPS 5m\n", title)
	for _, t := range rows {
		a, b := t.Last1m, t.Last5m
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%s\t%s\t%s\t%s\t%.1f\n", t.Label(), ratio(a), a.RPS,
			latency(a.P50, a.Requests), latency(a.P95, a.Requests), latency(a.P99, a.Requests), ratio(b), b.RPS)
	}
	_ = tw.Flush()
}

func ratio(w status.Window) string {
	if w.Requests == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f%%", 100*w.Success)
}

func latency(d time.Duration, n int64) string {
	switch {
	case n == 0:
		return "-"
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000)
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}
