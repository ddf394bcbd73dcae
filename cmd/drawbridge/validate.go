package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/drawbridge-proxy/drawbridge/cmd/drawbridge/internal/config"
)

func validateCommand(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("validate --config FILE",
		"Load and validate a configuration file the way 'run' would. Every problem is\n"+
			"printed at once with its line and key path; the exit status is 1 if there is any.", stderr)
	path := fs.String("config", "", "configuration file (YAML)")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if *path == "" {
		fmt.Fprintln(stderr, "validate: --config FILE is required")
		return 2
	}
	f, err := config.Load(*path)
	if err != nil {
		var cerr *config.Error
		if errors.As(err, &cerr) {
			fmt.Fprintf(stderr, "%s: %d problem(s):\n", *path, len(cerr.Problems))
			for _, p := range cerr.Problems {
				fmt.Fprintf(stderr, "  %s\n", p)
			}
			return 1
		}
		fmt.Fprintf(stderr, "validate: %v\n", err)
		return 1
	}
	routes := 0
	for _, l := range f.Listeners {
		routes += len(l.Routes)
	}
	fmt.Fprintf(stdout, "%s: valid (%d listener(s), %d route(s), %d upstream(s))\n", *path, len(f.Listeners), routes, len(f.Upstreams))
	return 0
}
