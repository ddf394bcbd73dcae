package main

import (
	"encoding/json"
	"errors"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/drawbridge-proxy/drawbridge"

// pkgInfo is what go list says about one of our packages, paths relative
// to the module.
type pkgInfo struct {
	Imports     []string // non-test imports of ours
	TestImports []string // imports of ours from _test.go files (both test packages)
	Deps        []string // transitive non-test dependencies of ours
}

// ourPackages runs go list over the module.
func ourPackages(t *testing.T) map[string]pkgInfo {
	t.Helper()
	out, err := exec.Command("go", "list", "-json=ImportPath,Imports,TestImports,XTestImports,Deps", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string]pkgInfo{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p struct {
			ImportPath                               string
			Imports, TestImports, XTestImports, Deps []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		rel := ours(p.ImportPath)
		pkgs[rel[0]] = pkgInfo{
			Imports:     ours(p.Imports...),
			TestImports: slices.DeleteFunc(ours(append(p.TestImports, p.XTestImports...)...), func(s string) bool { return s == rel[0] }),
			Deps:        ours(p.Deps...),
		}
	}
	return pkgs
}

// ours keeps the module's own import paths, relative to the module.
func ours(paths ...string) []string {
	var out []string
	for _, p := range paths {
		if rel, ok := strings.CutPrefix(p, module+"/"); ok {
			out = append(out, rel)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// row is one line of CONTRIBUTING.md's package table.
type row struct {
	imports   []string // exactly the packages of ours it imports
	any       bool     // "everything": cmd/drawbridge composes all
	testsOnly bool     // a test helper: imported only from _test.go files
}

// packageTable reads the table of CONTRIBUTING.md's Architecture section:
// "| `pkg` | job | `a`, `b` |", where the last cell is "nothing",
// "everything" or the packages it imports, and a job saying "(tests only)"
// marks a test helper.
func packageTable(t *testing.T) map[string]row {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "CONTRIBUTING.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]row{}
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		if len(cells) < 3 {
			t.Fatalf("CONTRIBUTING.md: table row %q has fewer than 3 cells", line)
		}
		name := strings.Trim(cells[0], "`")
		last := strings.TrimSpace(cells[len(cells)-1])
		r := row{testsOnly: strings.Contains(strings.Join(cells[1:len(cells)-1], " | "), "(tests only)")}
		switch last {
		case "nothing":
		case "everything":
			r.any = true
		default:
			for _, cell := range strings.Split(last, ",") {
				imp := strings.TrimSpace(cell)
				if !strings.HasPrefix(imp, "`") || !strings.HasSuffix(imp, "`") {
					t.Fatalf("CONTRIBUTING.md: row %s: %q is not a `package`, nothing or everything", name, imp)
				}
				r.imports = append(r.imports, strings.Trim(imp, "`"))
			}
			slices.Sort(r.imports)
		}
		if _, dup := rows[name]; dup {
			t.Errorf("CONTRIBUTING.md: %s has two rows", name)
		}
		rows[name] = r
	}
	if len(rows) == 0 {
		t.Fatal("CONTRIBUTING.md: no package table found")
	}
	return rows
}

// TestImportGraph enforces CONTRIBUTING.md's package table exactly: every
// package has a row and every row a package, each package imports exactly
// the packages of ours its row names, and test helpers are imported only
// from tests.
func TestImportGraph(t *testing.T) {
	pkgs, rows := ourPackages(t), packageTable(t)
	for _, name := range slices.Sorted(maps.Keys(rows)) {
		if _, ok := pkgs[name]; !ok {
			t.Errorf("CONTRIBUTING.md has a row for %s, which is not a package", name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(pkgs)) {
		p := pkgs[name]
		r, ok := rows[name]
		if !ok {
			t.Errorf("%s has no row in CONTRIBUTING.md's package table; add one (it imports %s)", name, listOrNothing(p.Imports))
			continue
		}
		if !r.any && !slices.Equal(p.Imports, r.imports) {
			t.Errorf("%s imports %s; CONTRIBUTING.md says %s", name, listOrNothing(p.Imports), listOrNothing(r.imports))
		}
		for _, imp := range p.Imports {
			if rows[imp].testsOnly && !r.testsOnly {
				t.Errorf("%s imports the test helper %s from non-test code", name, imp)
			}
		}
	}
}

// TestImportRules checks the rules below the table over the transitive
// graph, so an edit of the table cannot quietly break them.
func TestImportRules(t *testing.T) {
	forbidden := []struct{ pkg, dep, rule string }{
		{"telemetry", "", "telemetry imports nothing of ours outside telemetry"},
		{"health", "proxy", "health never imports proxy"},
		{"pki", "proxy", "pki never imports proxy"},
		{"pki", "health", "pki never imports health"},
		{"", "cmd", "nothing imports cmd"},
	}
	for name, p := range ourPackages(t) {
		for _, f := range forbidden {
			if f.pkg != "" && !within(name, f.pkg) || f.pkg == "" && within(name, "cmd") {
				continue
			}
			deps := p.Deps
			if f.dep == "cmd" {
				deps = append(slices.Clone(deps), p.TestImports...)
			}
			for _, d := range deps {
				if f.dep == "" && !within(d, "telemetry") || f.dep != "" && within(d, f.dep) {
					t.Errorf("%s depends on %s: %s", name, d, f.rule)
				}
			}
		}
		for _, imp := range p.Imports {
			if strings.HasSuffix(imp, "test") {
				t.Errorf("%s imports %s from non-test code: *test helper packages are imported only from _test.go files", name, imp)
			}
		}
	}
}

// within reports whether pkg is dir or below it.
func within(pkg, dir string) bool { return pkg == dir || strings.HasPrefix(pkg, dir+"/") }

func listOrNothing(pkgs []string) string {
	if len(pkgs) == 0 {
		return "nothing"
	}
	return "`" + strings.Join(pkgs, "`, `") + "`"
}

// TestEveryPackageHasOneDocFile: exactly one doc.go with a package comment.
func TestEveryPackageHasOneDocFile(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.Dir}}|{{.Doc}}", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		dir, doc, _ := strings.Cut(line, "|")
		if doc == "" {
			t.Errorf("%s has no package documentation", dir)
		}
		if _, err := os.Stat(filepath.Join(dir, "doc.go")); err != nil {
			t.Errorf("%s has no doc.go", dir)
		}
	}
}
