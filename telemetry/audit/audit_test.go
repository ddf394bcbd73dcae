package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func fixedClock() func() time.Time {
	t := time.Date(2026, 11, 5, 10, 0, 0, 0, time.UTC)
	return func() time.Time { t = t.Add(time.Second); return t }
}

// writeChain records n events into a fresh file and returns its path.
func writeChain(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(Config{Path: path}, Deps{Now: fixedClock()})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		ev := Event{Name: "secret.read", Subject: "db-password", Actor: "drawbridge", Fingerprint: l.Fingerprint([]byte{byte(i)})}
		if err := l.Record(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func verifyFile(t *testing.T, data []byte) Summary {
	t.Helper()
	s, err := Verify(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerifyIntactChain(t *testing.T) {
	data, _ := os.ReadFile(writeChain(t, 5))
	s := verifyFile(t, data)
	if len(s.Problems) != 0 || s.Entries != 5 || s.LastSeq != 5 {
		t.Fatalf("got %+v, want 5 entries and no problems", s)
	}
}

func TestVerifyFindsTampering(t *testing.T) {
	data, _ := os.ReadFile(writeChain(t, 5))
	lines := strings.SplitAfter(string(data), "\n")
	tests := []struct {
		name string
		edit func([]string) []string
		want string // in the first problem
	}{
		{"altered field", func(l []string) []string {
			l[2] = strings.Replace(l[2], `"result":"success"`, `"result":"denied"`, 1)
			return l
		}, "line 3: seq 3: hash does not match"},
		{"removed entry", func(l []string) []string { return append(l[:2:2], l[3:]...) }, "line 3: seq 4 where 3 was expected"},
		{"removed first entry", func(l []string) []string { return l[1:] }, "line 1: seq 2 where 1 was expected"},
		{"swapped entries", func(l []string) []string { l[1], l[2] = l[2], l[1]; return l }, "line 2: seq 3 where 2 was expected"},
		{"rehashed after edit", func(l []string) []string {
			// An attacker who recomputes the edited entry's own hash
			// still breaks the next entry's prev link.
			var e Entry
			_ = json.Unmarshal([]byte(l[1]), &e)
			e.Subject = "other"
			e.Hash = computeHash(e)
			b, _ := json.Marshal(e)
			l[1] = string(b) + "\n"
			return l
		}, "line 3: seq 3: prev does not match"},
		{"garbage line", func(l []string) []string { l[0] = "not json\n"; return l }, "line 1: not an audit entry"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			edited := tc.edit(append([]string(nil), lines...))
			s := verifyFile(t, []byte(strings.Join(edited, "")))
			if len(s.Problems) == 0 {
				t.Fatalf("got no problems, want %q", tc.want)
			}
			if got := s.Problems[0].String(); !strings.HasPrefix(got, tc.want) {
				t.Fatalf("got %q, want prefix %q", got, tc.want)
			}
		})
	}
}

func TestReopenContinuesChain(t *testing.T) {
	path := writeChain(t, 3)
	reg := prometheus.NewRegistry()
	l, err := Open(Config{Path: path}, Deps{Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	if seq, _ := l.Head(); seq != 3 {
		t.Fatalf("got head seq %d, want 3", seq)
	}
	if err := l.Record(context.Background(), Event{Name: "authz.deny", Result: ResultDenied, Subject: "spiffe://demo/web"}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	l.Close() // idempotent
	if err := l.Record(context.Background(), Event{Name: "x"}); err == nil {
		t.Fatal("got nil error recording on a closed log")
	}
	if got := testutil.ToFloat64(l.errs); got != 1 {
		t.Fatalf("got %v write errors, want 1", got)
	}
	if got := testutil.ToFloat64(l.events.WithLabelValues("authz.deny", "denied")); got != 1 {
		t.Fatalf("got %v authz.deny events, want 1", got)
	}
	data, _ := os.ReadFile(path)
	if s := verifyFile(t, data); len(s.Problems) != 0 || s.Entries != 4 {
		t.Fatalf("got %+v, want 4 good entries", s)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("got mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestOpenRefusesDamagedTail(t *testing.T) {
	path := writeChain(t, 2)
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"seq":3,"trunc`)
	f.Close()
	if _, err := Open(Config{Path: path}, Deps{}); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("got %v, want an error about a damaged last line", err)
	}
}

func TestFingerprint(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	os.WriteFile(keyFile, []byte("0123456789abcdef0123456789abcdef\n"), 0o600)
	l, err := Open(Config{Path: filepath.Join(dir, "a.log"), FingerprintKeyFile: keyFile}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	a, b := l.Fingerprint([]byte("hunter2")), l.Fingerprint([]byte("hunter2"))
	if a != b || !strings.HasPrefix(a, "hmac-sha256:") || strings.Contains(a, "hunter2") {
		t.Fatalf("got %q and %q, want equal keyed fingerprints", a, b)
	}
	if l.Fingerprint([]byte("hunter3")) == a {
		t.Fatal("different secrets gave the same fingerprint")
	}
	var nilLog *Log
	if err := nilLog.Record(context.Background(), Event{Name: "x"}); err != nil {
		t.Fatalf("nil log: got %v, want nil", err)
	}
}

func TestConfigValidate(t *testing.T) {
	c := Config{Path: "relative.log", FingerprintKeyFile: "/k"}
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "path: ") {
		t.Fatalf("got %v, want a path problem", err)
	}
	c = Config{FingerprintKeyFile: "/k"}
	if err := c.Validate(); err == nil || !strings.HasPrefix(err.Error(), "fingerprint_key_file: ") {
		t.Fatalf("got %v, want a fingerprint_key_file problem", err)
	}
}

// TestRotationContinuesTheChain: the file is moved away (logrotate) while the
// log is open; the next entry starts a new file at the path whose chain
// continues the old one, and VerifyAfter checks the join.
func TestRotationContinuesTheChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(Config{Path: path}, Deps{Now: fixedClock()})
	if err != nil {
		t.Fatal(err)
	}
	record := func(n int) {
		for range n {
			if err := l.Record(context.Background(), Event{Name: "cert.issue", Subject: "spiffe://d/api"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	record(3)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	record(2)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	first := verifyFile(t, old)
	if first.Entries != 3 || len(first.Problems) != 0 {
		t.Fatalf("rotated file: %+v, want its 3 entries intact (nothing written to it after the rename)", first)
	}
	second, err := VerifyAfter(bytes.NewReader(cur), first.LastSeq, first.LastHash)
	if err != nil {
		t.Fatal(err)
	}
	if second.Entries != 2 || second.LastSeq != 5 || len(second.Problems) != 0 {
		t.Fatalf("new file: %+v, want entries 4 and 5 continuing the rotated file's chain", second)
	}
	if alone := verifyFile(t, cur); len(alone.Problems) == 0 {
		t.Fatal("the new file verified alone as a whole chain; want its start (seq 4) reported")
	}
	// Cutting the last entry of the rotated file breaks the join.
	cut := old[:bytes.LastIndexByte(bytes.TrimRight(old, "\n"), '\n')+1]
	short := verifyFile(t, cut)
	if s, _ := VerifyAfter(bytes.NewReader(cur), short.LastSeq, short.LastHash); len(s.Problems) == 0 {
		t.Fatal("a rotated file missing its last entry joined the next file cleanly")
	}
}
