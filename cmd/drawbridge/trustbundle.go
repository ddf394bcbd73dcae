package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/drawbridge-proxy/drawbridge/cmd/drawbridge/internal/certfiles"
)

const trustBundleSynopsis = `Write the CA's trust bundle (PEM roots, the active one first) to FILE (0644),
atomically. With --watch it keeps running and rewrites FILE whenever the
bundle changes (a root rotation), so instances that only need to trust the CA
(sidecars' pki.enroll.ca_file, a client's sslrootcert) can read it from a
volume they share with this command, without access to the CA's state.
It opens the state dir of the configuration's pki section, like cert issue.`

func trustBundleCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("trust-bundle --config FILE --out FILE [--watch]", trustBundleSynopsis, stderr)
	path := fs.String("config", "", "configuration file (YAML) with a pki section")
	out := fs.String("out", "", "the file to write the bundle to")
	watch := fs.Bool("watch", false, "keep running and rewrite the file when the bundle changes")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if *path == "" || *out == "" {
		fmt.Fprintln(stderr, "trust-bundle: --config and --out are required")
		return 2
	}
	if err := writeTrustBundle(ctx, *path, *out, *watch, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "trust-bundle: %v\n", err)
		return 1
	}
	return 0
}

func writeTrustBundle(ctx context.Context, path, out string, watch bool, stdout, stderr io.Writer) error {
	f, err := loadPKIConfig(path)
	if err != nil {
		return err
	}
	if f.PKI.EnrollClient != nil {
		return errors.New(path + ": pki has an enroll block; trust-bundle reads the bundle from the CA's own state dir")
	}
	p, log, err := openFilePKI(ctx, f, stderr)
	if err != nil {
		return err
	}
	defer p.Close()
	w := &certfiles.BundleWriter{Path: out, Log: log}
	if err := w.Write(p.Manager.TrustBundle().PEM()); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote the trust bundle to %s\n", out)
	if !watch {
		return nil
	}
	followPKI(ctx, p, f.PKI.CheckInterval, log, "the trust bundle", func() error {
		return w.Write(p.Manager.TrustBundle().PEM())
	})
	return nil
}
