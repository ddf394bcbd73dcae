package imagetest

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The app image budgets (issue 17), against a naive build of the same app (testdata/naive/*.Dockerfile: one stage on
// Debian with the build tools, COPY . . first) and against the same image's cold build.
const (
	minAppSavings          = 0.50       // 1 - ours/naive, for every app image
	maxWebBytes            = 25_000_000 // the web tier, from scratch
	appImagePrefixEnv      = "DRAWBRIDGE_IMAGETEST_PREFIX"
	defaultAppImagePrefix  = "drawbridge-imagetest"
	appComposeProjectLabel = "apps"
)

// An app is one of examples/todo's images: its directory, the naive Dockerfile it is compared with, and a one-line
// change to one of its sources.
type app struct {
	name   string
	file   string // the file the one-line change goes to, relative to the app's directory
	change func(old string) string
}

var todoApps = []app{
	{"web", "src/components/Header.jsx", func(s string) string {
		return strings.Replace(s, ">Todo<", ">Todo (rebuilt)<", 1)
	}},
	{"api", "app.py", func(s string) string { return s + "# imagetest: a one-line change\n" }},
	{"db", "schema.sql", func(s string) string { return s + "-- imagetest: a one-line change\n" }},
}

// forbiddenNames are files no production image may hold: compilers, build tools, bundlers, test runners, package
// managers (matched on the base name; a trailing * matches any suffix, such as gcc-12 or pip3.11).
var forbiddenNames = []string{
	"gcc*", "cc", "c++", "g++*", "cpp", "cpp-*", "clang*", "ld", "ld.bfd", "ld.gold", "as", "make", "cmake", "go", "gofmt",
	"cargo", "rustc", "javac", "esbuild", "node", "nodejs", "npm", "npx", "yarn", "pip", "pip3*", "pytest*", "py.test",
	"apt", "apt-get", "apt-cache", "dpkg", "dpkg-deb", "rpm", "yum", "dnf", "apk",
}

// forbiddenDirs are directories no production image may hold: Python test runners and installers, C headers,
// package manager state.
var forbiddenDirs = []string{
	"usr/lib/python3/dist-packages/pytest", "usr/lib/python3/dist-packages/_pytest", "usr/lib/python3/dist-packages/pip",
	"usr/include", "var/lib/dpkg", "var/lib/apt", "etc/apt",
}

// appFigures is one row of the table.
type appFigures struct {
	name                 string
	naive, ours          int64
	cold, rebuild        time.Duration
	files                int
	forbidden            []string
	note                 string
	measuredCold, haveFS bool
}

func appImagePrefix() string {
	if p := os.Getenv(appImagePrefixEnv); p != "" {
		return p
	}
	return defaultAppImagePrefix
}

// TestAppImages builds examples/todo's web, api and db images with BuildKit (through Compose v2, as users build
// them): cold (--no-cache), then again after a one-line source change, and a naive single-stage build of each; checks
// the budgets, lists each production image's files to show that no build tool, compiler, test runner or package
// manager is in it, runs the api's test stage, and prints the table deploy/README.md quotes (with the gateway's row
// from TestImage when it ran first in this process).
func TestAppImages(t *testing.T) {
	requireDocker(t)
	compose := composeV2()
	if compose == nil {
		t.Fatal("no BuildKit client: install the Compose v2 plugin (deploy/images/compose-v2.sh) or set DRAWBRIDGE_COMPOSE_V2")
	}
	for _, base := range []string{"debian:bookworm-slim", gatewayImage()} {
		if err := exec.Command("docker", "image", "inspect", base).Run(); err != nil {
			t.Fatalf("image %s is missing (deploy/images/bootstrap.sh; the gateway image: run TestImage first, or docker compose -f deploy/compose.yaml build edge)", base)
		}
	}
	root := repoRoot(t)
	var rows []appFigures
	for _, a := range todoApps {
		t.Run(a.name, func(t *testing.T) {
			rows = append(rows, measureApp(t, compose, root, a))
		})
	}
	t.Run("api-tests", func(t *testing.T) { runAPITests(t, compose, root) })
	table := appTable(append(rows, gatewayRow()))
	t.Logf("image sizes and build times (paste into deploy/README.md):\n%s", table)
	if dir := os.Getenv("DRAWBRIDGE_ARTIFACTS"); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, "image-table.md"), []byte(table), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// gatewayImage is the drawbridge image the web image copies its server from (the web Dockerfile's DRAWBRIDGE_IMAGE):
// $DRAWBRIDGE_IMAGETEST_GATEWAY, else the one TestImage built, else drawbridge:latest.
func gatewayImage() string {
	if ref := os.Getenv("DRAWBRIDGE_IMAGETEST_GATEWAY"); ref != "" {
		return ref
	}
	if exec.Command("docker", "image", "inspect", imageRepo+":latest").Run() == nil {
		return imageRepo + ":latest"
	}
	return "drawbridge:latest"
}

func measureApp(t *testing.T, compose []string, root string, a app) appFigures {
	prefix := appImagePrefix()
	ref := fmt.Sprintf("%s-%s:opt", prefix, a.name)
	removeImage(t, ref)
	dir := copyTree(t, filepath.Join(root, "examples", "todo", a.name))
	f := appFigures{name: "todo-" + a.name}

	f.cold, _ = composeBuild(t, compose, dir, a.name, ref, "--no-cache")
	coldID := imageID(t, ref)
	changeOneLine(t, filepath.Join(dir, a.file), a.change)
	var rebuildLog string
	f.rebuild, rebuildLog = composeBuild(t, compose, dir, a.name, ref)
	// The rebuild's cost is judged by what it reused, not by the clock (times swing with the host's steal): every
	// package install must come from the layer cache, and something must have been rebuilt.
	ran, cached := buildSteps(rebuildLog)
	for _, step := range ran {
		if strings.Contains(step, "apt-get install") {
			t.Errorf("%s: the rebuild after a one-line change to %s reinstalled packages instead of reusing the cache: %s",
				f.name, a.file, step)
		}
	}
	if len(cached) == 0 || len(ran) == 0 {
		t.Errorf("%s: the rebuild ran %d steps and reused %d; want the package layers reused and the changed source rebuilt\n%s",
			f.name, len(ran), len(cached), tail(rebuildLog, 4000))
	}
	if id := imageID(t, ref); id == coldID {
		t.Errorf("the rebuild after changing %s gave the same image: the change did not reach it", a.file)
	} else {
		_ = exec.Command("docker", "rmi", coldID).Run() // untagged by the rebuild
	}
	f.measuredCold = true
	f.ours = imageSize(t, ref)
	f.naive = naiveSize(t, dir, a.name)
	f.files, f.forbidden = checkProdFiles(t, ref)
	f.haveFS = true

	savings := 1 - float64(f.ours)/float64(f.naive)
	t.Logf("%s: naive %s, ours %s (%.0f%% smaller); cold build %s, rebuild after a one-line change to %s %s (%.0f%% of cold)",
		f.name, mb(f.naive), mb(f.ours), 100*savings, f.cold.Round(100*time.Millisecond), a.file,
		f.rebuild.Round(100*time.Millisecond), 100*f.rebuild.Seconds()/f.cold.Seconds())
	if savings < minAppSavings {
		t.Errorf("%s is %s, only %.0f%% smaller than the naive build's %s (want at least %.0f%%)",
			f.name, mb(f.ours), 100*savings, mb(f.naive), 100*minAppSavings)
	}
	if a.name == "web" && f.ours > maxWebBytes {
		t.Errorf("todo-web is %d bytes, budget %d", f.ours, maxWebBytes)
	}
	return f
}

// composeBuild builds service name of a one-service compose file (context dir, image ref) and returns how long it
// took and BuildKit's plain progress log.
func composeBuild(t *testing.T, compose []string, dir, name, ref string, flags ...string) (time.Duration, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "compose.yaml")
	spec := fmt.Sprintf("services:\n  %s:\n    image: %s\n    build:\n      context: %q\n      args: {DRAWBRIDGE_IMAGE: %q}\n",
		name, ref, dir, gatewayImage())
	if err := os.WriteFile(file, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append(slices.Clone(compose[1:]), "-f", file, "-p", appImagePrefix()+"-"+appComposeProjectLabel,
		"--progress", "plain", "build")
	args = append(append(args, flags...), name)
	cmd := exec.CommandContext(t.Context(), compose[0], args...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, tail(string(out), 6000))
	}
	return took, string(out)
}

// buildSteps reads BuildKit's plain progress log ("#7 [build 3/4] RUN ./build.sh", later "#7 CACHED" or
// "#7 DONE 1.2s") into the Dockerfile instructions that ran and those that came from the cache.
func buildSteps(log string) (ran, cached []string) {
	instruction := map[string]string{}
	var order []string
	state := map[string]string{}
	for _, line := range strings.Split(log, "\n") {
		id, rest, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok || !strings.HasPrefix(id, "#") {
			continue
		}
		switch {
		case strings.HasPrefix(rest, "[") && strings.Contains(rest, "] "):
			if _, seen := instruction[id]; !seen {
				_, instruction[id], _ = strings.Cut(rest, "] ")
				order = append(order, id)
			}
		case rest == "CACHED":
			state[id] = "cached"
		case strings.HasPrefix(rest, "DONE "):
			if state[id] == "" {
				state[id] = "ran"
			}
		}
	}
	for _, id := range order {
		switch state[id] {
		case "cached":
			cached = append(cached, instruction[id])
		case "ran":
			ran = append(ran, instruction[id])
		}
	}
	return ran, cached
}

func imageID(t *testing.T, ref string) string {
	return strings.TrimSpace(docker(t, "image", "inspect", "-f", "{{.Id}}", ref))
}

func changeOneLine(t *testing.T, file string, change func(string) string) {
	t.Helper()
	old, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	updated := change(string(old))
	if updated == string(old) {
		t.Fatalf("the one-line change to %s changed nothing", file)
	}
	if err := os.WriteFile(file, []byte(updated), 0o644); err != nil {
		t.Fatal(err)
	}
}

// naiveSize builds testdata/naive/NAME.Dockerfile on a copy of the app's directory without its .dockerignore (a
// beginner has none) with the classic builder, and returns the image's size. The image is kept: an unchanged app
// rebuilds it from the layer cache next time.
func naiveSize(t *testing.T, appDir, name string) int64 {
	t.Helper()
	dockerfile, err := filepath.Abs(filepath.Join("testdata", "naive", name+".Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	dir := copyTree(t, appDir)
	if err := os.Remove(filepath.Join(dir, ".dockerignore")); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	ref := fmt.Sprintf("%s-%s:naive", appImagePrefix(), name)
	classicBuild(t, dir, "-q", "-f", dockerfile, "-t", ref)
	return imageSize(t, ref)
}

// checkProdFiles lists the files of a container of ref and reports every forbidden name or directory in it. The
// listing goes to the log (whole for small images; the count and the top-level directories otherwise) and, with
// DRAWBRIDGE_ARTIFACTS set, to a file there.
func checkProdFiles(t *testing.T, ref string) (int, []string) {
	t.Helper()
	names := listFiles(t, ref)
	var bad []string
	for _, n := range names {
		base := path.Base(n)
		for _, pat := range forbiddenNames {
			if ok, _ := path.Match(pat, base); ok {
				bad = append(bad, n)
				break
			}
		}
		for _, d := range forbiddenDirs {
			if n == d {
				bad = append(bad, n+"/")
			}
		}
		if base == "busybox" {
			bad = append(bad, busyboxPackageManagers(t, ref, n)...)
		}
	}
	if len(names) <= 60 {
		t.Logf("%s: %d files and directories:\n  %s", ref, len(names), strings.Join(names, "\n  "))
	} else {
		t.Logf("%s: %d files and directories, under %s", ref, len(names), strings.Join(topDirs(names), ", "))
	}
	if dir := os.Getenv("DRAWBRIDGE_ARTIFACTS"); dir != "" {
		file := filepath.Join(dir, strings.NewReplacer(":", "_", "/", "_").Replace(ref)+".files.txt")
		if err := os.WriteFile(file, []byte(strings.Join(names, "\n")+"\n"), 0o644); err != nil {
			t.Error(err)
		}
	}
	if len(bad) > 0 {
		t.Errorf("%s holds build tools, compilers, test runners or package managers: %v", ref, bad)
	} else {
		t.Logf("%s: none of %d forbidden names (%s) and none of %v", ref, len(forbiddenNames),
			strings.Join(forbiddenNames, " "), forbiddenDirs)
	}
	return len(names), bad
}

// busyboxPackageManagers reports the package manager applets (dpkg, rpm) a busybox binary carries, linked or not.
func busyboxPackageManagers(t *testing.T, ref, file string) []string {
	out, err := exec.CommandContext(t.Context(), "docker", "run", "--rm", "--network", "none", "--entrypoint", "/"+file,
		ref, "--list").Output()
	if err != nil {
		return []string{file + " (its applet list is unreadable: " + err.Error() + ")"}
	}
	var bad []string
	for _, applet := range strings.Fields(string(out)) {
		if slices.Contains([]string{"dpkg", "dpkg-deb", "rpm", "rpm2cpio", "apk"}, applet) {
			bad = append(bad, file+" applet "+applet)
		}
	}
	return bad
}

// listFiles returns every path of an exported container of ref, minus what Docker adds to every container.
func listFiles(t *testing.T, ref string) []string {
	t.Helper()
	id := strings.TrimSpace(docker(t, "create", ref, "/never-run"))
	defer docker(t, "rm", id)
	export := exec.CommandContext(t.Context(), "docker", "export", id)
	stdout, err := export.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := export.Start(); err != nil {
		t.Fatal(err)
	}
	var names []string
	tr := tar.NewReader(bufio.NewReader(stdout))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("reading docker export: %v", err)
		}
		name := strings.TrimSuffix(path.Clean(strings.TrimPrefix(h.Name, "./")), "/")
		if name == "." || slices.Contains(dockerFiles, name) || slices.Contains(dockerDirs, name) {
			continue
		}
		names = append(names, name)
	}
	if err := export.Wait(); err != nil {
		t.Fatalf("docker export: %v", err)
	}
	slices.Sort(names)
	return names
}

func topDirs(names []string) []string {
	var dirs []string
	for _, n := range names {
		top, _, _ := strings.Cut(n, "/")
		if !slices.Contains(dirs, top) {
			dirs = append(dirs, top)
		}
	}
	return dirs
}

// runAPITests builds the api's test stage, which runs its pytest suite against a real PostgreSQL during the build.
func runAPITests(t *testing.T, compose []string, root string) {
	ref := appImagePrefix() + "-api:test"
	removeImage(t, ref)
	file := filepath.Join(t.TempDir(), "compose.yaml")
	spec := fmt.Sprintf("services:\n  api-test:\n    image: %s\n    build:\n      context: %q\n      target: test\n",
		ref, filepath.Join(root, "examples", "todo", "api"))
	if err := os.WriteFile(file, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append(slices.Clone(compose[1:]), "-f", file, "-p", appImagePrefix()+"-"+appComposeProjectLabel,
		"--progress", "plain", "build", "api-test")
	out, err := exec.CommandContext(t.Context(), compose[0], args...).CombinedOutput()
	if err != nil {
		t.Fatalf("the api's test stage failed: %v\n%s", err, tail(string(out), 6000))
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, " passed") {
			t.Logf("api tests (pytest in the test stage): %s", strings.TrimSpace(l))
		}
	}
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

func appTable(rows []appFigures) string {
	var b strings.Builder
	b.WriteString("| image | naive build | ours | smaller by | cold build | rebuild after a one-line change | rebuild / cold | build tools in the image |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		if r.ours == 0 {
			fmt.Fprintf(&b, "| %s | - | - | - | - | - | - | %s |\n", r.name, r.note)
			continue
		}
		tools := "none"
		if !r.haveFS {
			tools = r.note
		} else if len(r.forbidden) > 0 {
			tools = strings.Join(r.forbidden, ", ")
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.0f%% | %.1f s | %.1f s | %.0f%% | %s |\n", r.name, mb(r.naive), mb(r.ours),
			100*(1-float64(r.ours)/float64(r.naive)), r.cold.Seconds(), r.rebuild.Seconds(),
			100*r.rebuild.Seconds()/r.cold.Seconds(), tools)
	}
	return b.String()
}

// gatewayFigures is what TestImage measured of the gateway image in this process (cold classic build, rebuild after a
// one-file change, size, naive size), for the table's last row. TestImage sets it; TestAppImages, which runs after it
// (test files run in name order, and this one sorts after image_test.go), reads it.
var gatewayFigures = appFigures{name: "drawbridge (gateway)", note: "not measured: TestImage did not run first"}

func gatewayRow() appFigures { return gatewayFigures }
