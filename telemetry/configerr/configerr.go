package configerr

import (
	"fmt"
	"strings"
)

// FieldError is one problem with one key of a configuration.
type FieldError struct {
	// Path is the key path relative to the configuration that was
	// validated, e.g. "targets[1]" or "tls.mode". Zero: the problem is
	// about the configuration as a whole.
	Path string
	// Msg says what is wrong, without the path.
	Msg string
}

// Error reads "path: msg", or msg alone without a path.
func (e FieldError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// List is every problem one Validate found, in the order found.
type List []FieldError

// Add records a problem at path.
func (l *List) Add(path, format string, args ...any) {
	*l = append(*l, FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// Nest adds the problems of a section's own Validate, whose paths are
// relative to the section, under the section's path.
func (l *List) Nest(path string, err error) {
	for _, e := range Of(err) {
		e.Path = Join(path, e.Path)
		*l = append(*l, e)
	}
}

// Err is l as an error, or nil when it holds no problem: the value a
// Validate returns.
func (l List) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// Error puts one problem on each line, as errors.Join does.
func (l List) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems one by one, so that errors.As and errors.Is
// see them as they see errors.Join's.
func (l List) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// Of returns the problems in err: a List, a FieldError, or errors joined
// with errors.Join around them. Any other error is a problem without a
// path. Of(nil) is empty.
func Of(err error) List {
	switch e := err.(type) { //nolint:errorlint // Of walks the tree itself: joined errors are unwrapped below, one level at a time
	case nil:
		return nil
	case List:
		return append(List(nil), e...)
	case FieldError:
		return List{e}
	case interface{ Unwrap() []error }:
		var out List
		for _, inner := range e.Unwrap() {
			out = append(out, Of(inner)...)
		}
		return out
	}
	return List{{Msg: err.Error()}}
}

// Join appends a relative key path to a section's path: Join("a", "b[1]")
// is "a.b[1]", Join("a", "[1]") is "a[1]", and an empty side leaves the
// other.
func Join(section, path string) string {
	switch {
	case section == "":
		return path
	case path == "":
		return section
	case strings.HasPrefix(path, "["):
		return section + path
	}
	return section + "." + path
}
