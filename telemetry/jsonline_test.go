package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// field is one field of a differential case.
type field struct {
	key  string
	kind byte // s string, i int, f float, b bool
	s    string
	i    int64
	f    float64
}

// bothWays writes the same line through slog's JSON handler and through
// JSONLines, and returns the two.
func bothWays(t testing.TB, at time.Time, msg string, fields []field) (slogLine, direct string) {
	t.Helper()
	var viaSlog, viaLines bytes.Buffer
	h := slog.NewJSONHandler(&viaSlog, nil)
	r := slog.NewRecord(at, slog.LevelInfo, msg, 0)
	j := &JSONLines{out: &viaLines}
	l := j.Start(at, slog.LevelInfo, msg)
	for _, f := range fields {
		switch f.kind {
		case 's':
			r.AddAttrs(slog.String(f.key, f.s))
			l.String(f.key, f.s)
		case 'i':
			r.AddAttrs(slog.Int64(f.key, f.i))
			l.Int(f.key, f.i)
		case 'f':
			r.AddAttrs(slog.Float64(f.key, f.f))
			l.Float(f.key, f.f)
		case 'b':
			r.AddAttrs(slog.Bool(f.key, f.i != 0))
			l.Bool(f.key, f.i != 0)
		}
	}
	if err := h.Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	l.Write()
	return viaSlog.String(), viaLines.String()
}

func TestJSONLinesMatchSlog(t *testing.T) {
	at := time.Date(2026, 12, 4, 19, 30, 1, 123456789, time.FixedZone("CET", 3600))
	cases := map[string][]field{
		"access line": {
			{key: "request_id", kind: 's', s: "01JEXAMPLE"}, {key: "status", kind: 'i', i: 200},
			{key: "duration_ms", kind: 'f', f: 0.123}, {key: "upgraded", kind: 'b', i: 1},
		},
		"escapes": {
			{key: "path", kind: 's', s: "/a\"b\\c\n\r\t\x00\x1f\x7f<>&'"},
			{key: "bad utf-8", kind: 's', s: "a\xffb\xc3"}, {key: "separators", kind: 's', s: "x\u2028y\u2029z"},
			{key: "héllo\"key", kind: 's', s: "ünïcode 日本"}, {key: "", kind: 's', s: ""},
		},
		"floats": {
			{key: "zero", kind: 'f'}, {key: "tiny", kind: 'f', f: 1e-7}, {key: "small", kind: 'f', f: 0.000001},
			{key: "big", kind: 'f', f: 1e21}, {key: "bigger", kind: 'f', f: 1.5e300}, {key: "neg", kind: 'f', f: -2.5e-9},
			{key: "ms", kind: 'f', f: 12345.678}, {key: "int-like", kind: 'f', f: 3},
		},
		"ints": {{key: "min", kind: 'i', i: math.MinInt64}, {key: "max", kind: 'i', i: math.MaxInt64}},
	}
	for name, fields := range cases {
		t.Run(name, func(t *testing.T) {
			want, got := bothWays(t, at, "access", fields)
			if got != want {
				t.Errorf("JSONLines wrote\n%s\nslog's JSON handler writes\n%s", got, want)
			}
		})
	}
}

// FuzzJSONLinesMatchSlog: any string and number the gateway logs (header
// values and paths come from clients) is written exactly as slog writes it.
func FuzzJSONLinesMatchSlog(f *testing.F) {
	f.Add("k", "v\n\"\\\x00\xff\u2028", int64(-1), 0.001)
	f.Add("h\xc3ad", "", int64(0), 1e-7)
	f.Fuzz(func(t *testing.T, key, value string, n int64, x float64) {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			x = 0 // slog writes an error for these; JSONLines writes null
		}
		fields := []field{{key: key, kind: 's', s: value}, {key: value, kind: 'i', i: n}, {key: "x", kind: 'f', f: x}}
		want, got := bothWays(t, time.Unix(0, n), value, fields)
		if got != want {
			t.Errorf("JSONLines wrote\n%s\nslog's JSON handler writes\n%s", got, want)
		}
	})
}

func TestLinesOf(t *testing.T) {
	var out bytes.Buffer
	log, _, err := NewLogger(LogConfig{Format: FormatJSON}, &out)
	if err != nil {
		t.Fatal(err)
	}
	lines := LinesOf(log)
	if lines == nil {
		t.Fatal("a JSON logger from NewLogger has no JSONLines")
	}
	log.Info("via slog", "k", "v")
	l := lines.Start(time.Now(), slog.LevelInfo, "direct")
	l.String("k", "v")
	l.Write()
	if n := bytes.Count(out.Bytes(), []byte("\n")); n != 2 || !bytes.Contains(out.Bytes(), []byte(`"msg":"direct","k":"v"}`)) {
		t.Errorf("both lines should reach the logger's output, got %q", out.String())
	}
	if LinesOf(log.With("component", "x")) != nil {
		t.Error("a derived logger must not offer direct lines: its attributes would be missing")
	}
	text, _, _ := NewLogger(LogConfig{Format: FormatText}, &out)
	if LinesOf(text) != nil || LinesOf(nil) != nil || LinesOf(slog.New(slog.NewJSONHandler(&out, nil))) != nil {
		t.Error("only NewLogger's JSON logger offers direct lines")
	}
}

func BenchmarkAccessLine(b *testing.B) {
	var sink bytes.Buffer
	lines := &JSONLines{out: &sink}
	traceID, spanID := trace.TraceID{1, 2, 3}, trace.SpanID{4, 5}
	b.ReportAllocs()
	for b.Loop() {
		sink.Reset()
		l := lines.Start(time.Now(), slog.LevelInfo, "access")
		l.String("request_id", "01JEXAMPLE0123456789")
		l.String("listener", "web")
		l.String("method", "GET")
		l.String("path", "/api/todos")
		l.Int("status", 200)
		l.Float("duration_ms", 0.123)
		l.TraceContext(traceID, spanID)
		l.Write()
	}
}

func TestLineTraceContext(t *testing.T) {
	var out bytes.Buffer
	l := (&JSONLines{out: &out}).Start(time.Unix(0, 0).UTC(), slog.LevelInfo, "access")
	traceID, spanID := trace.TraceID{0x0a, 0xff, 15: 1}, trace.SpanID{0x10, 7: 0xee}
	l.TraceContext(traceID, spanID)
	l.Write()
	want := `,"trace_id":"` + traceID.String() + `","span_id":"` + spanID.String() + `"}` + "\n"
	if !bytes.HasSuffix(out.Bytes(), []byte(want)) {
		t.Errorf("got %q, want it to end with %q", out.String(), want)
	}
}

// Direct lines and slog's lines share the logger's output from many
// goroutines: each arrives whole (run under -race).
func TestJSONLinesConcurrentWithSlog(t *testing.T) {
	var out bytes.Buffer
	log, _, err := NewLogger(LogConfig{Format: FormatJSON}, &out)
	if err != nil {
		t.Fatal(err)
	}
	lines := LinesOf(log)
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 200 {
				if g%2 == 0 {
					log.Info("via slog", "i", i)
					continue
				}
				l := lines.Start(time.Now(), slog.LevelInfo, "direct")
				l.Int("i", int64(i))
				l.Write()
			}
		}()
	}
	for range 4 {
		<-done
	}
	for n, line := range bytes.Split(bytes.TrimSuffix(out.Bytes(), []byte("\n")), []byte("\n")) {
		if !json.Valid(line) {
			t.Fatalf("line %d is not one whole JSON object: %q", n, line)
		}
	}
}
