package configerr

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestListNestsSectionsAndPrintsLikeJoin(t *testing.T) {
	var section List
	section.Add("targets[1]", "%q is not host:port", "x")
	section.Add("", "is required")
	var l List
	l.Add("shutdown_grace", "must be >= 0, got %s", "-1s")
	l.Nest("upstreams.api", section.Err())
	l.Nest("upstreams.api.health", nil)
	l.Nest("logging", errors.Join(FieldError{Path: "level", Msg: "unknown"}, errors.New("opaque")))
	want := List{
		{Path: "shutdown_grace", Msg: "must be >= 0, got -1s"},
		{Path: "upstreams.api.targets[1]", Msg: `"x" is not host:port`},
		{Path: "upstreams.api", Msg: "is required"},
		{Path: "logging.level", Msg: "unknown"},
		{Path: "logging", Msg: "opaque"},
	}
	if diff := cmp.Diff(want, l); diff != "" {
		t.Errorf("list (-want +got):\n%s", diff)
	}
	joined := errors.Join(errors.New(`shutdown_grace: must be >= 0, got -1s`), errors.New(`upstreams.api.targets[1]: "x" is not host:port`),
		errors.New("upstreams.api: is required"), errors.New("logging.level: unknown"), errors.New("logging: opaque"))
	if got := l.Err().Error(); got != joined.Error() {
		t.Errorf("Error() = %q, want errors.Join's %q", got, joined.Error())
	}
}

func TestEmptyListIsNoError(t *testing.T) {
	var l List
	if err := l.Err(); err != nil {
		t.Errorf("empty list Err() = %v, want nil", err)
	}
	if got := Of(nil); len(got) != 0 {
		t.Errorf("Of(nil) = %v, want empty", got)
	}
}

func TestOfFindsTheListBehindError(t *testing.T) {
	l := List{{Path: "a", Msg: "b"}}
	var got List
	if !errors.As(l.Err(), &got) || len(got) != 1 {
		t.Errorf("errors.As(List) = %v, want the list", got)
	}
	var fe FieldError
	if !errors.As(l.Err(), &fe) || fe != l[0] {
		t.Errorf("errors.As(FieldError) = %v, want %v", fe, l[0])
	}
}

func TestJoin(t *testing.T) {
	for _, c := range []struct{ section, path, want string }{
		{"a", "b", "a.b"}, {"a", "[1].c", "a[1].c"}, {"", "b", "b"}, {"a", "", "a"},
	} {
		if got := Join(c.section, c.path); got != c.want {
			t.Errorf("Join(%q, %q) = %q, want %q", c.section, c.path, got, c.want)
		}
	}
}
