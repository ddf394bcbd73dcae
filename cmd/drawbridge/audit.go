package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/drawbridge-proxy/drawbridge/telemetry/audit"
)

func auditCommand(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("audit verify FILE [FILE ...]",
		"Check every link of an audit log's hash chain: each entry's hash, its link to\n"+
			"the entry before, and sequence numbers without gaps. Prints every problem\n"+
			"with its line; exits 0 when the chain is intact, 1 when it is not.\n"+
			"After rotations, give the files oldest first (audit.log.2 audit.log.1\n"+
			"audit.log): each must continue the chain exactly where the one before ends.\n"+
			"Entries cut from the end cannot be seen in the chain: compare the last\n"+
			"sequence number and hash printed here with the \"audit log closed\" line\n"+
			"of the operational log.", stderr)
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if fs.NArg() < 2 || fs.Arg(0) != "verify" {
		fs.Usage()
		return 2
	}
	var seq uint64
	var head string
	broken := false
	for _, path := range fs.Args()[1:] {
		s, err := verifyAuditFile(path, seq, head)
		if err != nil {
			fmt.Fprintf(stderr, "audit verify: %v\n", err)
			return 1
		}
		for _, p := range s.Problems {
			fmt.Fprintf(stdout, "%s: %s\n", path, p)
		}
		if len(s.Problems) > 0 {
			fmt.Fprintf(stdout, "%s: chain BROKEN: %d problem(s) in %d entries\n", path, len(s.Problems), s.Entries)
			broken = true
		} else {
			fmt.Fprintf(stdout, "%s: chain intact: %d entries, last seq %d, head %s\n", path, s.Entries, s.LastSeq, s.LastHash)
		}
		seq, head = s.LastSeq, s.LastHash
	}
	if broken {
		return 1
	}
	return 0
}

// verifyAuditFile checks one file of a chain that continues after seq and head.
func verifyAuditFile(path string, seq uint64, head string) (audit.Summary, error) {
	f, err := os.Open(path) // #nosec G304 -- the operator names the file
	if err != nil {
		return audit.Summary{}, err
	}
	defer f.Close()
	s, err := audit.VerifyAfter(f, seq, head)
	if err != nil {
		return s, fmt.Errorf("reading %s: %w", path, err)
	}
	return s, nil
}
