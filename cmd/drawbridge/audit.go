package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/drawbridge-proxy/drawbridge/telemetry/audit"
)

func auditCommand(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("audit verify FILE",
		"Check every link of an audit log's hash chain: each entry's hash, its link to\n"+
			"the entry before, and sequence numbers without gaps. Prints every problem\n"+
			"with its line; exits 0 when the chain is intact, 1 when it is not.\n"+
			"Entries cut from the end cannot be seen in the chain: compare the last\n"+
			"sequence number and hash printed here with the \"audit log closed\" line\n"+
			"of the operational log.", stderr)
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if fs.NArg() != 2 || fs.Arg(0) != "verify" {
		fs.Usage()
		return 2
	}
	path := fs.Arg(1)
	f, err := os.Open(path) // #nosec G304 -- the operator names the file
	if err != nil {
		fmt.Fprintf(stderr, "audit verify: %v\n", err)
		return 1
	}
	defer f.Close()
	s, err := audit.Verify(f)
	if err != nil {
		fmt.Fprintf(stderr, "audit verify: reading %s: %v\n", path, err)
		return 1
	}
	for _, p := range s.Problems {
		fmt.Fprintf(stdout, "%s: %s\n", path, p)
	}
	if len(s.Problems) > 0 {
		fmt.Fprintf(stdout, "%s: chain BROKEN: %d problem(s) in %d entries\n", path, len(s.Problems), s.Entries)
		return 1
	}
	fmt.Fprintf(stdout, "%s: chain intact: %d entries, last seq %d, head %s\n", path, s.Entries, s.LastSeq, s.LastHash)
	return 0
}
