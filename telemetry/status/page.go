package status

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"time"
)

//go:embed status.html.tmpl
var files embed.FS

// Options shape the page.
type Options struct {
	// Refresh is how often the page reloads itself. Zero means 5s.
	Refresh time.Duration
	// Logger receives rendering failures. Nil discards them.
	Logger *slog.Logger
}

// Page serves the status page from snapshots taken on each request.
type Page struct {
	source  func(*http.Request) Snapshot
	refresh time.Duration
	tmpl    *template.Template
	log     *slog.Logger
}

// New returns a Page that calls source for each request's snapshot.
func New(source func(*http.Request) Snapshot, opts Options) *Page {
	if opts.Refresh <= 0 {
		opts.Refresh = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	tmpl := template.Must(template.New("status.html.tmpl").Funcs(template.FuncMap{
		"relative":    relative,
		"ms":          millis,
		"stamp":       func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
		"until":       func(s Snapshot, t time.Time) time.Duration { return t.Sub(s.Generated) },
		"certProblem": func(s Snapshot, c Cert) string { return c.Problem(s.Generated) },
		"expired":     func(d time.Duration) bool { return d < 0 },
		"cls":         func(state string) string { return strings.ReplaceAll(state, " ", "-") },
		"join":        strings.Join,
		"spark":       sparkline,
		"pct":         percent,
		"rps":         func(v float64) string { return fmt.Sprintf("%.1f", v) },
		"lowSuccess":  func(w Window) bool { return w.Requests > 0 && w.Success < LowSuccess },
		"section":     func(title, kind string, rows []Traffic) trafficSection { return trafficSection{title, kind, rows} },
	}).ParseFS(files, "status.html.tmpl"))
	return &Page{source: source, refresh: opts.Refresh, tmpl: tmpl, log: opts.Logger}
}

// trafficSection is one table of the Traffic section.
type trafficSection struct {
	Title, Kind string
	Rows        []Traffic
}

type view struct {
	Snapshot
	RefreshSeconds int
}

// HTML serves the page.
func (p *Page) HTML() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		v := view{Snapshot: p.source(r), RefreshSeconds: int(math.Ceil(p.refresh.Seconds()))}
		if err := p.tmpl.Execute(&b, v); err != nil {
			p.log.Error("rendering the status page", "error", err.Error())
			http.Error(w, "rendering the status page failed", http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		securityHeaders(h)
		_, _ = w.Write(b.Bytes())
	})
}

// JSON serves the snapshot as JSON.
func (p *Page) JSON() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		securityHeaders(h)
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(withProblems(p.source(r)))
	})
}

// jsonSnapshot is a Snapshot with its problems spelled out, so a script
// applies the same rule as the page without re-implementing it.
type jsonSnapshot struct {
	Snapshot
	Problems []string `json:"problems"`
}

func withProblems(s Snapshot) jsonSnapshot {
	return jsonSnapshot{Snapshot: s, Problems: append([]string{}, s.Problems()...)}
}

func securityHeaders(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	// The page has no script at all; its only style is inline.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
}

// relative says how far away d is in words: "in 3d 4h", "2m ago".
func relative(d time.Duration) string {
	past := d < 0
	if past {
		d = -d
	}
	var s string
	switch {
	case d < time.Minute:
		s = fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		s = fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		s = fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		s = fmt.Sprintf("%dd %dh", int(d.Hours())/24, int(d.Hours())%24)
	}
	if past {
		return s + " ago"
	}
	return "in " + s
}

// LowSuccess is the success ratio below which a traffic row is marked.
const LowSuccess = 0.99

// percent formats a success ratio: "99.5%", "–" without requests.
func percent(w Window) string {
	if w.Requests == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f%%", 100*w.Success)
}

func millis(d time.Duration) string {
	if d == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000)
}
