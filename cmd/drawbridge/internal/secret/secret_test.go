package secret

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
	"github.com/drawbridge-proxy/drawbridge/telemetry/audit"
)

func TestParseRef(t *testing.T) {
	tests := []struct {
		in   string
		want Ref
		ok   bool
	}{
		{"file:/run/secrets/ca_passphrase", Ref{"file", "/run/secrets/ca_passphrase"}, true},
		{"env:API_KEY", Ref{"env", "API_KEY"}, true},
		{"file:relative/path", Ref{}, false},
		{"file:/run/secrets/../etc/shadow", Ref{}, false},
		{"env:", Ref{}, false},
		{"hunter2", Ref{}, false},
		{"vault:secret/x", Ref{}, false},
	}
	for _, tc := range tests {
		got, err := ParseRef(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseRef(%q) = %+v, %v; want %+v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("the error repeats the would-be secret: %v", err)
		}
	}
}

func FuzzSecretFile(f *testing.F) {
	for _, s := range []string{"s3cret\n", "", "\n", "a\x00b", "line1\nline2\n", strings.Repeat("x", MaxSize+1)} {
		f.Add(s, "file:/run/secrets/x")
	}
	f.Fuzz(func(t *testing.T, content, ref string) {
		if _, err := ParseRef(ref); err != nil && strings.Contains(err.Error(), content) && len(content) > 3 {
			t.Fatalf("ParseRef error echoes content")
		}
		v, err := normalize([]byte(content))
		if err != nil {
			if len(content) > 3 && strings.Contains(err.Error(), content) {
				t.Fatalf("normalize error echoes the content: %v", err)
			}
			return
		}
		if len(v) == 0 || len(v) > MaxSize || bytes.IndexByte(v, 0) >= 0 || !strings.HasPrefix(content, string(v)) {
			t.Fatalf("normalize(%q) = %q", content, v)
		}
	})
}

type auditLog struct {
	mu     sync.Mutex
	events []Event
}

func (a *auditLog) add(e Event) { a.mu.Lock(); a.events = append(a.events, e); a.mu.Unlock() }
func (a *auditLog) all() []Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Event(nil), a.events...)
}

type fixture struct {
	w     *Watcher
	audit *auditLog
	logs  *drawtest.Buffer
	reg   *prometheus.Registry
	dir   string
}

func newFixture(t *testing.T, interval time.Duration) *fixture {
	t.Helper()
	f := &fixture{audit: &auditLog{}, logs: &drawtest.Buffer{}, reg: prometheus.NewRegistry(), dir: t.TempDir()}
	var err error
	f.w, err = NewWatcher(interval, Deps{
		Logger: slog.New(slog.NewJSONHandler(f.logs, nil)), Audit: f.audit.add,
		Registerer: f.reg, FingerprintKey: []byte("test key"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// writeInPlace rewrites a file's content without replacing the inode, as
// an edit through a Compose bind mount does.
func writeInPlace(t *testing.T, path, content string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
}

// renameInto replaces a file atomically, as most tools (and Swarm) do.
func renameInto(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".new"
	write(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestRotationKinds(t *testing.T) {
	tests := []struct {
		name   string
		rotate func(t *testing.T, path, content string)
	}{
		{"in place", writeInPlace},
		{"by rename", renameInto},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, time.Hour)
			path := filepath.Join(f.dir, "api_key")
			write(t, path, "first-value\n")
			s, err := f.w.Add("api_key", "file:"+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			changes := 0
			s.OnChange(func() { changes++ })
			if string(s.Value()) != "first-value" {
				t.Fatalf("value %q, want the trailing newline dropped", s.Value())
			}
			tc.rotate(t, path, "second-value\n")
			f.w.Check()
			if string(s.Value()) != "second-value" || s.Version() != 2 || changes != 1 {
				t.Fatalf("after rotation: value %q version %d changes %d", s.Value(), s.Version(), changes)
			}
			f.w.Check() // nothing changed: no new event
			ev := f.audit.all()
			if len(ev) != 2 || ev[0].Action != "secret.read" || ev[1].Action != "secret.reload" || ev[1].Result != "ok" ||
				ev[0].Fingerprint == ev[1].Fingerprint || ev[1].Fingerprint != audit.Fingerprint([]byte("test key"), []byte("second-value")) {
				t.Errorf("audit events %+v", ev)
			}
			assertNoSecretIn(t, f, "first-value", "second-value")
		})
	}
}

func TestSymlinkSwapLikeSwarmAndKubernetes(t *testing.T) {
	f := newFixture(t, time.Hour)
	v1, v2 := filepath.Join(f.dir, "..v1"), filepath.Join(f.dir, "..v2")
	_ = os.Mkdir(v1, 0o700)
	_ = os.Mkdir(v2, 0o700)
	write(t, filepath.Join(v1, "token"), "token-one")
	write(t, filepath.Join(v2, "token"), "token-two")
	data := filepath.Join(f.dir, "..data")
	if err := os.Symlink(v1, data); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(f.dir, "token")
	_ = os.Symlink(filepath.Join("..data", "token"), link)
	s, err := f.w.Add("token", "file:"+link, nil)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(f.dir, "..data_tmp")
	_ = os.Symlink(v2, tmp)
	if err := os.Rename(tmp, data); err != nil {
		t.Fatal(err)
	}
	f.w.Check()
	if string(s.Value()) != "token-two" {
		t.Errorf("value %q after the symlink swap, want token-two", s.Value())
	}
}

func TestBadNewValueKeepsTheOldOne(t *testing.T) {
	f := newFixture(t, time.Hour)
	path := filepath.Join(f.dir, "passphrase")
	write(t, path, "long-enough-passphrase")
	minLen := func(v []byte) error {
		if len(v) < 12 {
			return errors.New("must be at least 12 bytes")
		}
		return nil
	}
	s, err := f.w.Add("passphrase", "file:"+path, minLen)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"short", "", "has\x00nul"} {
		writeInPlace(t, path, bad)
		f.w.Check()
		f.w.Check() // the same bad content is reported once
		if string(s.Value()) != "long-enough-passphrase" || s.Version() != 1 {
			t.Fatalf("after bad value %q: value %q version %d; the old value must stay", bad, s.Value(), s.Version())
		}
	}
	_ = os.Remove(path)
	f.w.Check()
	if string(s.Value()) != "long-enough-passphrase" {
		t.Fatal("a missing file replaced the value")
	}
	ev := f.audit.all()
	results := []string{}
	for _, e := range ev[1:] {
		results = append(results, e.Result)
	}
	if strings.Join(results, ",") != "refused,refused,refused,error" {
		t.Errorf("audit results %v, want three refusals and one unreadable", results)
	}
	if got := testutil.ToFloat64(f.w.reloads.WithLabelValues("passphrase", "refused")); got != 3 {
		t.Errorf("refused counter %v, want 3", got)
	}
	if !strings.Contains(f.logs.String(), "previous value stays in service") {
		t.Errorf("refusal not logged:\n%s", f.logs)
	}
	assertNoSecretIn(t, f, "long-enough-passphrase", "short")
}

func TestAddFailuresNameTheSecret(t *testing.T) {
	f := newFixture(t, time.Hour)
	_, err := f.w.Add("db_password", "file:"+filepath.Join(f.dir, "missing"), nil)
	if err == nil || !strings.Contains(err.Error(), "db_password") {
		t.Errorf("missing file: %v", err)
	}
	_, err = f.w.Add("db_password", "p4ssw0rd", nil)
	if !errors.Is(err, ErrNotRef) || strings.Contains(err.Error(), "p4ssw0rd") {
		t.Errorf("literal value: %v", err)
	}
}

func TestEnvSecretsWarn(t *testing.T) {
	t.Setenv("DRAWBRIDGE_TEST_TOKEN", "env-token-value")
	f := newFixture(t, time.Hour)
	s, err := f.w.Add("token", "env:DRAWBRIDGE_TEST_TOKEN", nil)
	if err != nil || string(s.Value()) != "env-token-value" {
		t.Fatalf("%v %q", err, s.Value())
	}
	if !strings.Contains(f.logs.String(), "for development only") {
		t.Errorf("no warning about env secrets:\n%s", f.logs)
	}
	assertNoSecretIn(t, f, "env-token-value")
}

func TestFormattingNeverShowsTheValue(t *testing.T) {
	f := newFixture(t, time.Hour)
	path := filepath.Join(f.dir, "k")
	write(t, path, "value-that-must-not-print")
	s, _ := f.w.Add("k", "file:"+path, nil)
	out := fmt.Sprintf("%v %s %+v %#v %q %x", s, s, s, s, s, s)
	if strings.Contains(out, "value-that-must-not-print") || !strings.Contains(out, "secret(k)") {
		t.Errorf("formatted: %s", out)
	}
}

// Run notices a change through the directory watch or the poll within two
// poll intervals.
func TestRunPicksUpChanges(t *testing.T) {
	f := newFixture(t, 200*time.Millisecond)
	path := filepath.Join(f.dir, "token")
	write(t, path, "v1")
	s, err := f.w.Add("token", "file:"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	time.Sleep(50 * time.Millisecond) // let the watch be set up
	for i, rotate := range []func(*testing.T, string, string){writeInPlace, renameInto} {
		want := fmt.Sprintf("v%d", i+2)
		start := time.Now()
		rotate(t, path, want)
		for string(s.Value()) != want {
			if time.Since(start) > 2*200*time.Millisecond+time.Second {
				t.Fatalf("value still %q after %s", s.Value(), time.Since(start))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func assertNoSecretIn(t *testing.T, f *fixture, values ...string) {
	t.Helper()
	mfs, _ := f.reg.Gather()
	var metrics strings.Builder
	for _, mf := range mfs {
		metrics.WriteString(mf.String())
	}
	var audit strings.Builder
	for _, e := range f.audit.all() {
		fmt.Fprintf(&audit, "%+v\n", e)
	}
	for _, v := range values {
		for name, text := range map[string]string{"log": f.logs.String(), "metrics": metrics.String(), "audit": audit.String()} {
			if v != "" && strings.Contains(text, v) {
				t.Errorf("the %s output holds the secret %q", name, v)
			}
		}
	}
}
