package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// TestGoldenMetricsInBrowser runs the demo, sends good requests, breaks
// the API with its chaos endpoint and sends more: in Debian's Chromium the
// status page's api route then shows a success ratio below 100% and red
// 5xx bars in its sparkline, on a laptop, on a phone and in dark mode;
// screenshots go to the test log.
func TestGoldenMetricsInBrowser(t *testing.T) {
	chromium := needTool(t, "chromium", "chromium")
	d := startDemo(t, io.Discard, io.Discard)
	get := func(path string) int {
		resp, err := d.client.Get(d.base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for range 20 {
		get("/api/hello")
	}
	resp, err := d.client.Post(d.base+"/api/chaos?seconds=3", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	failed := 0
	for range 20 {
		if get("/api/hello") >= 500 {
			failed++
		}
	}
	if failed == 0 {
		t.Fatal("the chaos endpoint broke nothing")
	}
	t.Logf("20 good requests, then 20 during chaos of which %d answered 5xx", failed)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-component-update", true), chromedp.WindowSize(1280, 1000))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	defer cancelTimeout()
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+d.admin+"/status")); err != nil {
		t.Fatalf("loading /status: %v", err)
	}
	row := `tr[data-traffic="route:edge/api"]`
	success, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(row+" td.success-1m")))
	if err != nil {
		t.Fatalf("reading the api route's success ratio: %v", err)
	}
	ratio, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(success), "%"), 64)
	if err != nil || ratio >= 100 || ratio < 25 {
		t.Errorf("api success ratio over the last minute %q, want below 100%% (%d of 40 failed)", success, failed)
	}
	var st statusJSON
	getJSON(t, "http://"+d.admin+"/status.json", &st)
	if got := fmt.Sprintf("%.1f%%", 100*st.routeSuccess("edge", "api")); got != strings.TrimSpace(success) {
		t.Errorf("the page says %s, /status.json %s", success, got)
	}
	redBars, err := chromedp.Run(ctx, chromedp.Evaluate[float64](
		`document.querySelectorAll('tr[data-traffic="route:edge/api"] svg.spark rect.err').length`))
	if err != nil {
		t.Fatal(err)
	}
	bars, _ := chromedp.Run(ctx, chromedp.Evaluate[float64](
		`document.querySelectorAll('tr[data-traffic="route:edge/api"] svg.spark rect.req').length`))
	if redBars < 1 || bars < 1 {
		t.Errorf("the api sparkline has %v bars, %v of them with red 5xx: want both", bars, redBars)
	}
	fill, _ := chromedp.Run(ctx, chromedp.Evaluate[string](
		`getComputedStyle(document.querySelector('tr[data-traffic="route:edge/api"] svg.spark rect.err')).fill`))
	if fill != "rgb(207, 34, 46)" {
		t.Errorf("5xx bars are filled %q, want the page's red", fill)
	}
	target, _ := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.querySelectorAll('tr[data-traffic^="target:api/"]').length`))
	if target != 1 {
		t.Errorf("%v rows for the api's target, want 1", target)
	}
	shot := screenshotter(t, ctx)
	shot("golden-laptop.png")

	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile),
		chromedp.Navigate("http://"+d.admin+"/status")); err != nil {
		t.Fatal(err)
	}
	if width, _ := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.documentElement.scrollWidth`)); width > 390 {
		t.Errorf("on a 390px wide phone the page is %vpx wide", width)
	}
	shot("golden-phone.png")

	if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+d.admin+"/status")); err != nil {
		t.Fatal(err)
	}
	bg, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`getComputedStyle(document.body).backgroundColor`))
	if bg != "rgb(13, 17, 23)" {
		t.Errorf("dark mode: body background %q, want rgb(13, 17, 23)", bg)
	}
	shot("golden-phone-dark.png")
}

// screenshotter saves full-page PNGs of ctx's page in the test's artifact
// directory and logs where.
func screenshotter(t *testing.T, ctx context.Context) func(name string) {
	dir := artifactDir(t)
	return func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100 means PNG
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s (%d bytes)", path, len(png))
	}
}
