package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/drawbridge-proxy/drawbridge/telemetry/configerr"
)

// Problem is one thing wrong with a configuration file.
type Problem struct {
	Line    int    // 1-based; 0 when unknown
	Path    string // key path, e.g. "upstreams.api.targets[1]"; may be empty
	Message string
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Path != "" {
		b.WriteString(p.Path + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Error lists every problem found in one file.
type Error struct {
	File     string
	Problems []Problem
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = e.File + ": " + p.String()
	}
	return strings.Join(lines, "\n")
}

// Purpose is what a file is loaded for; it decides which sections must be
// there.
type Purpose int

const (
	// Serving (run, sidecar, validate, reload): at least one listener.
	Serving Purpose = iota
	// PKIOnly (ca, cert, trust-bundle): a pki section; listeners and
	// upstreams may be absent, so a CA can be prepared before any route
	// exists.
	PKIOnly
)

// Load reads, decodes, completes and validates the file at path for serving.
func Load(path string) (*File, error) { return LoadFor(path, Serving) }

// LoadFor is Load for a purpose.
func LoadFor(path string, p Purpose) (*File, error) {
	data, err := os.ReadFile(path) // #nosec G304 -- the operator names the config file
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return ParseFor(path, data, p)
}

// Parse decodes data strictly, fills defaults and validates it for
// serving. Every problem is reported at once in an *Error; name labels them.
func Parse(name string, data []byte) (*File, error) { return ParseFor(name, data, Serving) }

// ParseFor is Parse for a purpose.
func ParseFor(name string, data []byte, purpose Purpose) (*File, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, &Error{File: name, Problems: []Problem{syntaxProblem(err)}}
	}
	if len(root.Content) == 0 {
		return nil, &Error{File: name, Problems: []Problem{{Message: "the file is empty; see 'Configuration reference' in the README"}}}
	}
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var found []Problem
	if err := dec.Decode(&f); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, &Error{File: name, Problems: decodeProblems(err, &root)}
		}
		// yaml.v3 decodes everything it can around type errors, so the
		// rest of the file can still be validated: every problem at once.
		found = decodeProblems(err, &root)
	}
	f.Defaults()
	if err := f.Validate(); err != nil {
		found = mergeProblems(found, validationProblems(err, &root))
	}
	found = append(found, purposeProblems(&f, purpose)...)
	if len(found) > 0 {
		return nil, &Error{File: name, Problems: found}
	}
	f.Source, f.LoadedAt = name, time.Now()
	return &f, nil
}

// purposeProblems names the sections the purpose needs and f lacks.
func purposeProblems(f *File, purpose Purpose) []Problem {
	switch {
	case purpose == Serving && len(f.Listeners) == 0 && !f.servesCA():
		return []Problem{{Path: "listeners", Message: "at least one listener is required to serve " +
			"(or pki.enrollment_listener, for a CA that only serves enrollment; the ca, cert and trust-bundle " +
			"commands take a file with only a pki section)"}}
	case purpose == PKIOnly && f.PKI == nil:
		return []Problem{{Path: "pki", Message: "a pki section is required (state_dir, passphrase_file)"}}
	}
	return nil
}

// servesCA says f is a CA that serves its enrollment endpoint: with no
// listeners, the ca role of a multi-node deployment (deploy/stack.yaml).
func (f *File) servesCA() bool {
	return f.PKI != nil && f.PKI.EnrollClient == nil && f.PKI.EnrollmentListener.Address != ""
}

// mergeProblems adds validation problems to decode problems, leaving out
// those about a key that already failed to decode (they would only repeat it).
func mergeProblems(decoded, validated []Problem) []Problem {
	failed := map[string]bool{}
	for _, p := range decoded {
		failed[p.Path] = true
	}
	out := decoded
	for _, p := range validated {
		if !failed[p.Path] {
			out = append(out, p)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Line < out[j].Line })
	return out
}

var lineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

func syntaxProblem(err error) Problem {
	if m := lineRE.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1])
		return Problem{Line: n, Message: "YAML syntax: " + m[2]}
	}
	return Problem{Message: "YAML syntax: " + strings.TrimPrefix(err.Error(), "yaml: ")}
}

var (
	unknownFieldRE = regexp.MustCompile(`^field (\S+) not found in type (\S+)$`)
	cannotDecodeRE = regexp.MustCompile("^cannot unmarshal !!(\\w+) `(.*)` into (\\S+)$")
)

// decodeProblems turns yaml.v3's type errors ("line 5: field foo not found
// in type proxy.ListenerConfig") into problems with key paths.
func decodeProblems(err error, root *yaml.Node) []Problem {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return []Problem{{Message: err.Error()}}
	}
	var out []Problem
	for _, msg := range te.Errors {
		p := Problem{Message: msg}
		if m := lineRE.FindStringSubmatch(msg); m != nil {
			p.Line, _ = strconv.Atoi(m[1])
			p.Message = m[2]
		}
		if m := unknownFieldRE.FindStringSubmatch(p.Message); m != nil {
			p.Message = fmt.Sprintf("unknown key %q; check its spelling and where it is indented", m[1])
			p.Path = keyPathAt(root, p.Line, m[1], "")
		} else if m := cannotDecodeRE.FindStringSubmatch(p.Message); m != nil {
			p.Message = fmt.Sprintf("%q is not a valid %s", m[2], friendlyType(m[3]))
			p.Path = keyPathAt(root, p.Line, "", m[2])
		} else {
			p.Path = keyPathAt(root, p.Line, "", firstQuoted(p.Message))
		}
		out = append(out, p)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Line < out[j].Line })
	return out
}

var quotedRE = regexp.MustCompile(`"((?:[^"\\]|\\.)*)"`)

// firstQuoted returns the first Go-quoted string in msg, unquoted, which
// custom decoders use to name the offending value.
func firstQuoted(msg string) string {
	m := quotedRE.FindString(msg)
	if m == "" {
		return ""
	}
	s, err := strconv.Unquote(m)
	if err != nil {
		return ""
	}
	return s
}

func friendlyType(goType string) string {
	switch goType {
	case "time.Duration":
		return "duration (use a unit: 500ms, 5s, 1m)"
	case "int", "int64":
		return "integer"
	case "bool":
		return "boolean (true or false)"
	case "string":
		return "string"
	}
	if strings.HasPrefix(goType, "map[") {
		return "mapping (key: value)"
	}
	if strings.HasPrefix(goType, "[]") {
		return "list"
	}
	return "value here"
}

// validationProblems places each problem at the line of its key path.
func validationProblems(err error, root *yaml.Node) []Problem {
	var out []Problem
	for _, e := range configerr.Of(err) {
		if e.Path == "" {
			out = append(out, Problem{Message: e.Msg})
			continue
		}
		out = append(out, Problem{Line: lineOf(root, e.Path), Path: e.Path, Message: e.Msg})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Line < out[j].Line })
	return out
}
