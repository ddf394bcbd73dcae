package statusview

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/drawbridge-proxy/drawbridge/telemetry/status"
)

// Doc is /status.json: the snapshot and its problems.
type Doc struct {
	status.Snapshot
	Problems []string `json:"problems"`
}

// Fetch gets the Doc at url with c, sending token as a bearer token when
// it is set.
func Fetch(ctx context.Context, c *http.Client, url, token string) (*Doc, error) {
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
	var d Doc
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&d); err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	return &d, nil
}

// Print writes the summary: a header line, the problems, then one table
// of routes and one of targets, as linkerd viz stat lays them out.
func Print(w io.Writer, d *Doc) {
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
