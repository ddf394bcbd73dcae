package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// Stamped at build time with -ldflags "-X main.version=... -X main.commit=...".
var version, commit = "dev", "none"

// command is one subcommand.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

func commands() map[string]command {
	return map[string]command{
		"run":          {"serve a configuration file", runCommand},
		"validate":     {"check a configuration file and report every problem", validateCommand},
		"demo":         {"run a complete gateway with built-in demo services, no files needed", demoCommand},
		"healthcheck":  {"probe a URL; exit 0 on a 2xx answer (for Docker HEALTHCHECK)", healthcheckCommand},
		"version":      {"print version, commit and Go version", versionCommand},
		"audit":        {"check the hash chain of an audit log: audit verify FILE", auditCommand},
		"sidecar":      {"serve a configuration that enrolls with a CA instead of holding its key", sidecarCommand},
		"ca":           {"the internal CA: ca init|status|rotate|bundle --config FILE", caCommand},
		"cert":         {"issue a certificate to files for a service: cert issue --config FILE --name SERVICE --out DIR", certCommand},
		"backup":       {"write an encrypted archive of the PKI state and config (once or scheduled)", backupCommand},
		"restore":      {"restore a backup archive into an empty PKI state dir", restoreCommand},
		"trust-bundle": {"write the CA's trust bundle to a file (and keep it current with --watch)", trustBundleCommand},
		"status":       {"a running gateway's golden metrics and problems in the terminal (--watch)", statusCommand},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "drawbridge: unknown command %q\n\n", args[0])
		usage(stderr, cmds)
		return 2
	}
	return cmd.run(ctx, args[1:], stdout, stderr)
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "drawbridge: the gateway, internal mTLS hop and certificate authority of a Docker app.")
	fmt.Fprintln(w, "\nUsage: drawbridge <command> [flags]\n\nCommands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'drawbridge <command> --help' for the flags of a command.")
}

// newFlagSet returns a flag set that prints a usage line and the flags on --help.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: drawbridge %s\n\n%s\n", name, synopsis)
		var any bool
		fs.VisitAll(func(*flag.Flag) { any = true })
		if any {
			fmt.Fprintln(stderr, "\nFlags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parseFlags parses args and returns the exit code to use when parsing
// ended the command (help or an error), or -1 to go on.
func parseFlags(fs *flag.FlagSet, args []string) int {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	return -1
}
