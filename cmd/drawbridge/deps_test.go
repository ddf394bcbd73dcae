package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/drawbridge-proxy/drawbridge"

// TestImportGraph enforces the package DAG of CONTRIBUTING.md.
func TestImportGraph(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	// forbidden[pkg prefix] = import prefixes it must not use.
	forbidden := map[string][]string{
		module + "/telemetry": {module + "/"},
		module + "/health":    {module + "/proxy", module + "/cmd"},
		module + "/pki":       {module + "/proxy", module + "/health", module + "/cmd"},
		module + "/proxy":     {module + "/cmd"},
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, imports := fields[0], fields[1:]
		for _, imp := range imports {
			if strings.HasSuffix(imp, "test") && strings.HasPrefix(imp, module) {
				t.Errorf("%s imports the test helper %s from non-test code", pkg, imp)
			}
			if strings.HasPrefix(imp, module+"/cmd") && !strings.HasPrefix(pkg, module+"/cmd") {
				t.Errorf("%s imports %s: nothing imports cmd", pkg, imp)
			}
			for prefix, bans := range forbidden {
				if pkg != prefix && !strings.HasPrefix(pkg, prefix+"/") {
					continue
				}
				for _, ban := range bans {
					if strings.HasPrefix(imp, ban) && !(prefix == module+"/telemetry" && strings.HasPrefix(imp, module+"/telemetry")) {
						t.Errorf("%s imports %s, which the package graph forbids", pkg, imp)
					}
				}
			}
		}
	}
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
