package telemetry

import (
	"encoding/hex"
	"io"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/trace"
)

// JSONLines writes log lines byte for byte as the logger's JSON handler
// would, without building a slog.Record: a line per proxied request is the
// gateway's hottest log, and slog's attributes, record and float encoding
// (json.Marshal) cost more than the rest of the request's telemetry. A
// logger NewLogger made in JSON format offers its JSONLines through
// LinesOf; other loggers (text, or derived with With) have none, and their
// callers log through slog as usual.
type JSONLines struct {
	out io.Writer
}

// LinesOf returns the direct line writer behind log, or nil when log's
// handler is not NewLogger's JSON handler itself.
func LinesOf(log *slog.Logger) *JSONLines {
	if log == nil {
		return nil
	}
	if h, ok := log.Handler().(jsonHandler); ok {
		return h.lines
	}
	return nil
}

// jsonHandler is slog's JSON handler with its output at hand for
// JSONLines. With and WithGroup return slog's own handler: a derived
// logger's attributes would be missing from a direct line.
type jsonHandler struct {
	*slog.JSONHandler
	lines *JSONLines
}

// Line is one log line being written: Start it, add fields, Write it. A
// Line is not safe for concurrent use and must not be used after Write.
type Line struct {
	buf []byte
	out io.Writer
}

// maxPooledLine keeps one huge line (long headers) from pinning its buffer.
const maxPooledLine = 16 << 10

var linePool sync.Pool // *Line

// Start begins a line at time t with level and msg, as the JSON handler
// writes a record's built-in fields.
func (j *JSONLines) Start(t time.Time, level slog.Level, msg string) *Line {
	l, ok := linePool.Get().(*Line)
	if !ok { // the pool is empty
		l = &Line{buf: make([]byte, 0, 1024)}
	}
	l.out = j.out
	b := append(l.buf[:0], `{"time":"`...)
	b = t.Round(0).AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":`...)
	b = appendJSONString(b, level.String())
	b = append(b, `,"msg":`...)
	l.buf = appendJSONString(b, msg)
	return l
}

func (l *Line) key(k string) {
	l.buf = append(appendJSONString(append(l.buf, ','), k), ':')
}

// String adds a string field.
func (l *Line) String(key, v string) {
	l.key(key)
	l.buf = appendJSONString(l.buf, v)
}

// Int adds an integer field.
func (l *Line) Int(key string, v int64) {
	l.key(key)
	l.buf = strconv.AppendInt(l.buf, v, 10)
}

// Float adds a number field, formatted as encoding/json (and so slog)
// formats a float64. NaN and infinities, which JSON cannot carry, are null.
func (l *Line) Float(key string, v float64) {
	l.key(key)
	l.buf = appendJSONFloat(l.buf, v)
}

// Bool adds a boolean field.
func (l *Line) Bool(key string, v bool) {
	l.key(key)
	l.buf = strconv.AppendBool(l.buf, v)
}

// TraceContext adds trace_id and span_id, in lower-case hex as OpenTelemetry
// writes them. The IDs come by value: nothing escapes to the heap.
func (l *Line) TraceContext(traceID trace.TraceID, spanID trace.SpanID) {
	l.key("trace_id")
	l.buf = append(hex.AppendEncode(append(l.buf, '"'), traceID[:]), '"')
	l.key("span_id")
	l.buf = append(hex.AppendEncode(append(l.buf, '"'), spanID[:]), '"')
}

// Write ends the line and writes it in one Write; the Line goes back to
// the pool. A failing output has nowhere to report to, as with slog.
func (l *Line) Write() {
	l.buf = append(l.buf, '}', '\n')
	_, _ = l.out.Write(l.buf)
	l.out = nil
	if cap(l.buf) <= maxPooledLine {
		linePool.Put(l)
	}
}

// appendJSONFloat formats f as encoding/json does: the shortest
// representation, in exponent form only below 1e-6 or from 1e21, with a
// one-digit negative exponent not padded.
func appendJSONFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// 1e-07 -> 1e-7
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendJSONString appends s quoted as slog's JSON handler quotes it:
// control characters, quotes and backslashes escaped, invalid UTF-8 as
// U+FFFD, U+2028 and U+2029 escaped; HTML characters left alone.
func appendJSONString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(append(b, s[start:i]...), `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(append(b, s[start:i]...), `\u202`...)
			b = append(b, hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(append(b, s[start:]...), '"')
}
