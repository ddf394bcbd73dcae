package browsertest

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// env returns the variables a test needs, skipping it when the first is unset (no stack to drive).
func env(t *testing.T, names ...string) []string {
	t.Helper()
	if os.Getenv(names[0]) == "" {
		t.Skipf("%s is unset: deploy/e2e.sh sets it to a running stack", names[0])
	}
	vals := make([]string, len(names))
	for i, n := range names {
		if vals[i] = os.Getenv(n); vals[i] == "" {
			t.Fatalf("%s is set but %s is not", names[0], n)
		}
	}
	return vals
}

// edgeSPKI verifies the edge's certificate at rawURL against the CA bundle in caFile and returns the base64 SHA-256
// of its public key, the form Chromium's --ignore-certificate-errors-spki-list takes.
func edgeSPKI(t *testing.T, rawURL, caFile string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no PEM certificate", caFile)
	}
	conn, err := tls.Dial("tcp", u.Host, &tls.Config{RootCAs: roots, ServerName: u.Hostname(), MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("TLS to the edge at %s, verified against %s: %v", u.Host, caFile, err)
	}
	defer conn.Close()
	sum := sha256.Sum256(conn.ConnectionState().PeerCertificates[0].RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// browser starts headless Chromium that trusts the edge at rawURL (its verified key pinned) and returns its context.
func browser(t *testing.T, rawURL, caFile string) context.Context {
	t.Helper()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium not found: install Debian's chromium package (.ci/install-deps does)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("ignore-certificate-errors-spki-list", edgeSPKI(t, rawURL, caFile)),
		chromedp.WindowSize(1100, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(cancelTimeout)
	return ctx
}

// js evaluates expr in the page.
func js[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// waitJS polls the boolean expression expr in the page every 100 ms until it is true, for at most limit, and returns
// how long it took.
func waitJS(t *testing.T, ctx context.Context, what, expr string, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr, chromedp.EvalAwaitPromise))
		if err == nil && ok {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
			t.Fatalf("%s: not within %s (last error %v); the page says:\n%s", what, limit, err, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func do(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// compose runs `$E2E_COMPOSE args...` (the stack's compose command line).
func compose(t *testing.T, args ...string) {
	t.Helper()
	line := os.Getenv("E2E_COMPOSE") + " " + strings.Join(args, " ")
	if out, err := exec.CommandContext(t.Context(), "sh", "-c", line).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", line, err, out)
	}
}

// q quotes s as a JavaScript string literal.
func q(s string) string { return fmt.Sprintf("%q", s) }

// rowExpr is a JavaScript expression for the list row whose title is title (or null).
func rowExpr(title string) string {
	return `[...document.querySelectorAll('#todos li')].find(li => li.querySelector('.title').textContent === ` + q(title) + `)`
}

func TestTodoApp(t *testing.T) {
	vals := env(t, "E2E_URL", "E2E_CACERT", "E2E_COMPOSE")
	base, caFile := vals[0], vals[1]
	ctx := browser(t, base, caFile)
	title := fmt.Sprintf("browser todo %d", time.Now().UnixNano())

	do(t, ctx, "loading the app", chromedp.Navigate(base+"/"))
	waitJS(t, ctx, "the React app renders its list", `!!document.querySelector('#todos, #empty')`, 20*time.Second)
	if got := js[string](t, ctx, `document.querySelector('#title').textContent`); got != "Todo" {
		t.Errorf("heading: got %q, want Todo", got)
	}

	do(t, ctx, "adding a todo", chromedp.SendKeys(chromedp.ID("new-title"), title), chromedp.Click(chromedp.CSS("#add button[type=submit]")))
	waitJS(t, ctx, "the new todo in the list", `!!`+rowExpr(title), 10*time.Second)
	id := js[string](t, ctx, `document.querySelector('#request-id').textContent`)
	if len(id) < 8 || id == "none yet" {
		t.Errorf("request id after adding: got %q, want the gateway's X-Request-Id", id)
	}
	t.Logf("added %q; last request id %s", title, id)

	js[bool](t, ctx, `(`+rowExpr(title)+`.querySelector('.toggle').click(), true)`)
	waitJS(t, ctx, "the todo marked done", rowExpr(title)+`?.classList.contains('done') === true`, 10*time.Second)
	// Done on the server too: a fresh load shows it.
	do(t, ctx, "reloading", chromedp.Reload())
	waitJS(t, ctx, "the todo still done after a reload", rowExpr(title)+`?.querySelector('.toggle').checked === true`, 20*time.Second)

	js[bool](t, ctx, `(`+rowExpr(title)+`.querySelector('.delete').click(), true)`)
	waitJS(t, ctx, "the todo gone", `!`+rowExpr(title), 10*time.Second)
	do(t, ctx, "reloading", chromedp.Reload())
	waitJS(t, ctx, "the list after a reload", `!!document.querySelector('#todos, #empty')`, 20*time.Second)
	if js[bool](t, ctx, `!!`+rowExpr(title)) {
		t.Fatal("the deleted todo is back after a reload")
	}

	compose(t, "stop", "-t", "5", "api")
	stopped := time.Now()
	d := waitJS(t, ctx, "the banner while the api is stopped",
		`document.querySelector('#banner')?.textContent.includes('The API is resting') === true`, 30*time.Second)
	banner := js[string](t, ctx, `document.querySelector('#banner').textContent`)
	t.Logf("api stopped: banner after %s: %q", d.Round(100*time.Millisecond), banner)
	if !strings.Contains(banner, "50") {
		t.Errorf("banner %q: want the gateway's 5xx status in it", banner)
	}
	compose(t, "start", "api")
	d = waitJS(t, ctx, "the page recovering by itself after the api starts",
		`!document.querySelector('#banner') && !!document.querySelector('#todos, #empty')`, 90*time.Second)
	t.Logf("api started: banner gone %s later (%s after the stop)", d.Round(100*time.Millisecond), time.Since(stopped).Round(time.Second))
	shot(t, ctx, "todo-recovered.png")
}

func TestHotReload(t *testing.T) {
	vals := env(t, "E2E_URL", "E2E_CACERT", "E2E_WEB_SRC", "E2E_API_SRC")
	base, caFile, webSrc, apiSrc := vals[0], vals[1], vals[2], vals[3]
	ctx := browser(t, base, caFile)
	do(t, ctx, "loading the app", chromedp.Navigate(base+"/"))
	waitJS(t, ctx, "the React app renders", `document.querySelector('#title')?.textContent === 'Todo'`, 30*time.Second)
	// A mark that only this page load carries: after a live reload it is gone.
	js[bool](t, ctx, `(window.beforeReload = true)`)

	token := fmt.Sprintf("%d", time.Now().UnixNano()%1e9)
	header := filepath.Join(webSrc, "src", "components", "Header.jsx")
	edit(t, header, ">Todo<", ">Todo "+token+"<")
	d := waitJS(t, ctx, "the page showing the edited heading by itself",
		`document.querySelector('#title')?.textContent === `+q("Todo "+token), 10*time.Second)
	if js[bool](t, ctx, `window.beforeReload === true`) {
		t.Error("the heading changed but the page did not reload: want a live reload from esbuild's /esbuild stream")
	}
	t.Logf("web: heading edited in %s; the open page showed it %s later (live reload over SSE through the edge)",
		header, d.Round(10*time.Millisecond))

	route := "/hot-reload-" + token
	appPy := filepath.Join(apiSrc, "app.py")
	old, err := os.ReadFile(appPy)
	if err != nil {
		t.Fatal(err)
	}
	add := fmt.Sprintf("\n\n@app.get(%q)\ndef hot_reload_probe():\n    return jsonify(token=%q)\n", route, token)
	writeInPlace(t, appPy, string(old)+add)
	fetch := `fetch('/api` + route + `').then(r => r.ok ? r.json() : {}).then(b => b.token === ` + q(token) + `).catch(() => false)`
	d = waitJS(t, ctx, "the page's fetch reaching the new API route", fetch, 10*time.Second)
	t.Logf("api: route %s added to %s; the page's fetch got it %s later (gunicorn --reload)", route, appPy, d.Round(10*time.Millisecond))
	shot(t, ctx, "hot-reload.png")
}

// edit replaces old with new in file, in place (the stack's bind mount sees the same inode).
func edit(t *testing.T, file, old, new string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), old) {
		t.Fatalf("%s does not contain %q", file, old)
	}
	writeInPlace(t, file, strings.Replace(string(data), old, new, 1))
}

func writeInPlace(t *testing.T, file, content string) {
	t.Helper()
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// shot saves a screenshot under $DRAWBRIDGE_ARTIFACTS (when set) for people to look at.
func shot(t *testing.T, ctx context.Context, name string) {
	dir := os.Getenv("DRAWBRIDGE_ARTIFACTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("screenshot: %v", err)
		return
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Log(err)
	}
}
