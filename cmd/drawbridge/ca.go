package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/drawbridge-proxy/drawbridge/cmd/drawbridge/internal/certfiles"
	"github.com/drawbridge-proxy/drawbridge/pki/ca"
	"github.com/drawbridge-proxy/drawbridge/pki/part"
	"github.com/drawbridge-proxy/drawbridge/pki/store"
)

const caSynopsis = `Manage drawbridge's internal CA, in the state dir of the configuration's pki
section (the same file 'run' serves; a running gateway may share the state dir).

  ca init     create the root and intermediate in an empty state dir
  ca status   roots, intermediate, expiries, fingerprints, rotation progress
  ca rotate   start a root rotation now: a new root, cross-signed by the old
              one; both are in the trust bundle until every leaf issued under
              the old root has expired (see the README, "Root rotation")
  ca bundle   print the trust bundle (PEM), for curl --cacert or a service's CA file`

func caCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fs := newFlagSet("ca init|status|rotate|bundle --config FILE", caSynopsis, stderr)
		if code := parseFlags(fs, args); code >= 0 {
			return code
		}
		fs.Usage()
		return 2
	}
	sub, rest := args[0], args[1:]
	var synopsis string
	switch sub {
	case "init":
		synopsis = "Create a new CA (root and intermediate) in the empty state dir of the pki\nsection. Refuses a state dir that already holds a CA."
	case "status":
		synopsis = "Print the CA's roots, intermediate, expiries and SHA-256 fingerprints, and\nwhen a retiring root leaves the trust bundle."
	case "rotate":
		synopsis = "Start a root rotation now. New leaves chain to the new root at once; a running\n" +
			"gateway on the same state dir picks the new bundle up within pki.check_interval.\n" +
			"The old root stays in the bundle until the last leaf issued under it expires."
	case "bundle":
		synopsis = "Print the trust bundle (PEM roots, the active one first)."
	default:
		fmt.Fprintf(stderr, "ca: unknown subcommand %q (want init, status, rotate or bundle)\n", sub)
		return 2
	}
	fs := newFlagSet("ca "+sub+" --config FILE", synopsis, stderr)
	path := fs.String("config", "", "configuration file (YAML) with a pki section")
	asJSON := fs.Bool("json", false, "status: print JSON")
	out := fs.String("out", "", "bundle: write to this file (0644) instead of stdout")
	if code := parseFlags(fs, rest); code >= 0 {
		return code
	}
	if *path == "" {
		fmt.Fprintf(stderr, "ca %s: --config FILE is required\n", sub)
		return 2
	}
	ca, err := openCLICA(ctx, *path, ca.OpenOptions{MustCreate: sub == "init"})
	if err != nil {
		fmt.Fprintf(stderr, "ca %s: %v\n", sub, err)
		return 1
	}
	switch sub {
	case "init":
		fmt.Fprintln(stdout, "CA created.")
		printCAStatus(stdout, ca.Status())
	case "status":
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			_ = enc.Encode(ca.Status())
		} else {
			printCAStatus(stdout, ca.Status())
		}
	case "rotate":
		if err := ca.Rotate(ctx); err != nil {
			fmt.Fprintf(stderr, "ca rotate: %v\n", err)
			return 1
		}
		fmt.Fprintln(stdout, "Root rotation started: new leaves chain to the new root; the trust bundle holds both roots.")
		printCAStatus(stdout, ca.Status())
	case "bundle":
		pem := ca.TrustBundle().PEM()
		if *out == "" {
			_, _ = stdout.Write(pem)
			return 0
		}
		if err := certfiles.WriteFile(*out, pem, 0o644, nil); err != nil {
			fmt.Fprintf(stderr, "ca bundle: %v\n", err)
			return 1
		}
	}
	return 0
}

// openCLICA opens the CA of the configuration at path.
func openCLICA(ctx context.Context, path string, opts ca.OpenOptions) (*ca.CA, error) {
	f, err := loadPKIConfig(path)
	if err != nil {
		return nil, err
	}
	if f.PKI.EnrollClient != nil {
		return nil, fmt.Errorf("%s: pki.enroll is set: this instance enrolls with a CA elsewhere (%s); run the ca commands with the CA's configuration",
			path, f.PKI.EnrollClient.URL)
	}
	pass, err := store.ReadPassphrase(f.PKI.PassphraseFile)
	if err != nil {
		return nil, err
	}
	defer clear(pass)
	st, err := store.OpenStorage(ctx, f.PKI.StateDir, pass)
	if err != nil {
		return nil, err
	}
	authority, err := ca.Open(ctx, f.PKI.Config.CA(), st, part.Deps{}, opts)
	if errors.Is(err, ca.ErrNoCA) {
		return nil, fmt.Errorf("%w (state dir %s)", err, f.PKI.StateDir)
	}
	return authority, err
}

func printCAStatus(w io.Writer, st ca.Status) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "trust domain\t%s\n", st.TrustDomain)
	for _, r := range st.Roots {
		role := "root (active)"
		if !r.Active {
			role = "root (retiring)"
		}
		fmt.Fprintf(tw, "%s\t%s\n", role, r.Subject)
		fmt.Fprintf(tw, "  valid\t%s to %s (%s left)\n", day(r.NotBefore), day(r.NotAfter), left(r.NotAfter))
		fmt.Fprintf(tw, "  sha256\t%s\n", r.Fingerprint)
		if !r.Active {
			fmt.Fprintf(tw, "  leaves the bundle\tafter %s (when the last leaf issued under it expires)\n", day(r.LastLeafExpiry))
		}
	}
	fmt.Fprintf(tw, "intermediate\t%s\n", st.Intermediate.Subject)
	fmt.Fprintf(tw, "  valid\t%s to %s (%s left)\n", day(st.Intermediate.NotBefore), day(st.Intermediate.NotAfter), left(st.Intermediate.NotAfter))
	fmt.Fprintf(tw, "  sha256\t%s\n", st.Intermediate.Fingerprint)
	if st.Rotating {
		fmt.Fprintln(tw, "rotation\tin progress: give services with a CA file the new bundle (`drawbridge ca bundle`) before the old root leaves it")
	}
	_ = tw.Flush()
}

func day(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

func left(t time.Time) string {
	d := time.Until(t)
	switch {
	case d < 0:
		return "expired"
	case d > 48*time.Hour:
		return fmt.Sprintf("%d days", int(d.Hours()/24))
	default:
		return d.Round(time.Minute).String()
	}
}
