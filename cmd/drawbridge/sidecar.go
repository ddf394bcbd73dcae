package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/drawbridge-proxy/drawbridge/cmd/drawbridge/internal/config"
)

func sidecarCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("sidecar --config FILE",
		"Run drawbridge next to one service, without the CA key: the same runtime as\n"+
			"'run', with a configuration whose pki section has an enroll block, so its\n"+
			"certificates come from a CA's enrollment endpoint (a bootstrap token the\n"+
			"first time, its current certificate afterwards) and renew themselves.", stderr)
	path := fs.String("config", "", "configuration file (YAML) with pki.enroll")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if *path == "" {
		fmt.Fprintln(stderr, "sidecar: --config FILE is required")
		return 2
	}
	f, err := config.Load(*path)
	if err == nil {
		err = checkSidecar(f)
	}
	if err != nil {
		fmt.Fprintf(stderr, "sidecar: %v\n", err)
		return 1
	}
	if err := serve(ctx, f, stdout, nil); err != nil {
		fmt.Fprintf(stderr, "sidecar: %v\n", err)
		return 1
	}
	return 0
}

// checkSidecar refuses a configuration that would hold the CA key.
func checkSidecar(f *config.File) error {
	switch {
	case f.PKI == nil:
		return fmt.Errorf("%s has no pki section: a sidecar enrolls with a CA; add pki.enroll {url, token_file, ca_file} "+
			"(and pki.state_dir, pki.passphrase_file for its own sealed state)", f.Source)
	case f.PKI.EnrollClient == nil:
		return errors.New(f.Source + ": pki has no enroll block, so this instance would create and hold a CA key; " +
			"a sidecar gets its certificates from a CA's enrollment endpoint: add pki.enroll {url, token_file, ca_file}, " +
			"or run this configuration with 'drawbridge run'")
	}
	return nil
}
