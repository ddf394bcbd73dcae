package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
)

// artifactDir is where a test leaves files for people to look at:
// $DRAWBRIDGE_ARTIFACTS/<test> when set, else the test's artifact directory
// (kept with 'go test -artifacts', removed otherwise).
func artifactDir(t *testing.T) string {
	if base := os.Getenv("DRAWBRIDGE_ARTIFACTS"); base != "" {
		dir := filepath.Join(base, strings.ReplaceAll(t.Name(), "/", "_"))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	return t.ArtifactDir()
}

// TestStatusPageInBrowser loads /status in Debian's Chromium from a gateway
// whose upstream has one healthy target and one whose health check fails,
// checks what a person would read there on a laptop and on a phone, and
// saves screenshots.
func TestStatusPageInBrowser(t *testing.T) {
	chromium := needTool(t, "chromium", "chromium")
	be, dead := newOKBackend(t), drawtest.FreeAddr(t)
	yaml := strings.Replace(twoTargets(be.addr(), dead, ""), "    retries:",
		"    health: {type: http, path: /, interval: 50ms, unhealthy_interval: 50ms, unhealthy_threshold: 2}\n    retries:", 1)
	lg := startLive(t, yaml)
	for range 4 {
		if code, _ := httpGet(t, lg.edge+"/api/x"); code != 200 {
			t.Fatalf("got %d, want 200: the healthy target serves every request", code)
		}
	}
	drawtest.WaitFor(t, "the health check to mark "+dead+" down", func() bool {
		_, body := httpGet(t, lg.admin+"/status.json")
		return strings.Contains(body, `"address": "`+dead+`",
          "healthy": false`)
	})

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-component-update", true), chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	defer cancelTimeout()

	if err := chromedp.Do(ctx, chromedp.Navigate(lg.admin+"/status")); err != nil {
		t.Fatalf("loading /status: %v", err)
	}
	title, err := chromedp.Run(ctx, chromedp.Title())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(title, "drawbridge status") || !strings.HasPrefix(title, "⚠") {
		t.Errorf("title %q: want a warning sign before drawbridge status", title)
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("reading %s: %v", sel, err)
		}
		return strings.Join(strings.Fields(s), " ")
	}
	attr := func(sel, name string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(sel), name))
		if err != nil {
			t.Fatalf("reading %s of %s: %v", name, sel, err)
		}
		return v.Value
	}
	if got := text("#readiness"); got != "ready" {
		t.Errorf("readiness badge: got %q, want ready", got)
	}
	if got, want := text("#problems"), fmt.Sprintf("app target %s is down", dead); !strings.Contains(got, want) {
		t.Errorf("problems banner: got %q, want it to say %q", got, want)
	}
	healthyRow := fmt.Sprintf(`tr[data-target="app/%s"]`, be.addr())
	deadRow := fmt.Sprintf(`tr[data-target="app/%s"]`, dead)
	if got := attr(healthyRow, "data-state"); got != "up" {
		t.Errorf("healthy target state: got %q, want up", got)
	}
	if got := attr(deadRow, "data-state"); got != "down" {
		t.Errorf("dead target state: got %q, want down", got)
	}
	if got := text(deadRow); !strings.Contains(got, "Health check failing") || !strings.Contains(got, "connection refused") {
		t.Errorf("dead target row: got %q, want the failing health check and the refused connection", got)
	}
	if got := text("h3#upstream-app"); !strings.Contains(got, "1/2 available") {
		t.Errorf("upstream heading: got %q, want 1/2 available", got)
	}
	if got := attr(`meta[http-equiv="refresh"]`, "content"); got != "5" {
		t.Errorf("meta refresh: got %q, want 5", got)
	}

	dir := artifactDir(t)
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100 means PNG
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", path)
	}
	shot("status-laptop.png")

	// A phone: the tables turn into cards, and nothing is wider than the screen.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile),
		chromedp.Navigate(lg.admin+"/status")); err != nil {
		t.Fatal(err)
	}
	width, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.documentElement.scrollWidth`))
	if err != nil {
		t.Fatal(err)
	}
	if width > 390 {
		t.Errorf("on a 390px wide phone the page is %vpx wide: it scrolls sideways", width)
	}
	shot("status-phone.png")
}
