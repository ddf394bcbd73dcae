package status

import (
	"fmt"
	"html/template"
	"strings"
)

// Sparkline geometry, in SVG user units: one bar per point, a gap between.
const (
	sparkStep   = 3 // a bar of 2 and a gap of 1
	sparkHeight = 28
)

// sparkline renders t's points as an inline SVG bar chart: each bar is a
// bucket's requests, scaled to the busiest bucket, with its 5xx share in
// red at the bottom. Server-rendered, no script; its colours come from the
// page's CSS, so dark mode applies. The numbers alone make the markup, so
// nothing needs escaping but the title.
func sparkline(t Traffic) template.HTML {
	var peak uint32
	var errs uint64
	for _, p := range t.Points {
		peak = max(peak, p.Requests)
		errs += uint64(p.Errors)
	}
	w := len(t.Points) * sparkStep
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="spark" role="img" viewBox="0 0 %d %d" width="%d" height="%d" preserveAspectRatio="none" data-errors="%d">`,
		w, sparkHeight, w, sparkHeight, errs)
	fmt.Fprintf(&b, `<title>%s: requests per %s over the last 15 minutes, 5xx in red</title>`,
		template.HTMLEscapeString(t.Label()), t.PointInterval)
	fmt.Fprintf(&b, `<line class="base" x1="0" y1="%d" x2="%d" y2="%d"/>`, sparkHeight, w, sparkHeight)
	if peak > 0 {
		for i, p := range t.Points {
			if p.Requests == 0 {
				continue
			}
			h := max(1, float64(p.Requests)*sparkHeight/float64(peak))
			x := i * sparkStep
			fmt.Fprintf(&b, `<rect class="req" x="%d" y="%.1f" width="%d" height="%.1f"/>`, x, sparkHeight-h, sparkStep-1, h)
			if p.Errors > 0 {
				eh := max(1, h*float64(p.Errors)/float64(p.Requests))
				fmt.Fprintf(&b, `<rect class="err" x="%d" y="%.1f" width="%d" height="%.1f"/>`, x, sparkHeight-eh, sparkStep-1, eh)
			}
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // #nosec G203 -- built from numbers and an escaped title only
}
