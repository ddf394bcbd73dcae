package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
)

func versionCommand(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("version", "Print the version, the commit it was built from and the Go version.", stderr)
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	fmt.Fprintf(stdout, "drawbridge %s (commit %s, %s %s/%s)\n", version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return 0
}
