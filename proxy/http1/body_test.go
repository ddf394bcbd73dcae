package http1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func reader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }

// rest is what is left in br: the next message on the connection.
func rest(br *bufio.Reader) string { b, _ := io.ReadAll(br); return string(b) }

func TestLengthReader(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		n        int64
		body     string
		err      error
		leftover string
	}{
		{"exact", "hello", 5, "hello", nil, ""},
		{"followed by the next request", "helloGET /", 5, "hello", nil, "GET /"},
		{"empty body", "GET /", 0, "", nil, "GET /"},
		{"truncated", "hel", 5, "hel", ErrTruncated, ""},
		{"nothing at all", "", 5, "", ErrTruncated, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			br := reader(tt.in)
			lr := NewLengthReader(br, tt.n)
			body, err := io.ReadAll(lr)
			if string(body) != tt.body || !errors.Is(err, tt.err) {
				t.Errorf("got %q, %v; want %q, %v", body, err, tt.body, tt.err)
			}
			if got := lr.Done(); got != (tt.err == nil) {
				t.Errorf("Done: got %v, want %v", got, tt.err == nil)
			}
			if got := rest(br); got != tt.leftover {
				t.Errorf("left in the reader: got %q, want %q", got, tt.leftover)
			}
		})
	}
}

func TestChunkedReaderAccepts(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		body     string
		trailers []string
	}{
		{"one chunk", "5\r\nhello\r\n0\r\n\r\n", "hello", nil},
		{"several chunks, hex in both cases", "a\r\n0123456789\r\nA\r\nabcdefghij\r\n1\r\n!\r\n0\r\n\r\n",
			"0123456789abcdefghij!", nil},
		{"empty body", "0\r\n\r\n", "", nil},
		{"leading zeros", "0005\r\nhello\r\n000\r\n\r\n", "hello", nil},
		{"size of 15 digits", "00000000000000a\r\n0123456789\r\n0\r\n\r\n", "0123456789", nil},
		{"extensions", "5;a;b=c;d=\"e f\\\"g\"\r\nhello\r\n0;last\r\n\r\n", "hello", nil},
		{"extension with whitespace after the semicolon", "5; a = b ;c\r\nhello\r\n0\r\n\r\n", "hello", nil},
		{"trailers", "5\r\nhello\r\n0\r\nX-Sum: abc\r\nExpires:  never \r\n\r\n", "hello",
			[]string{"X-Sum: abc", "Expires: never"}},
		{"CRLF inside the data", "4\r\n\r\n\r\n\r\n0\r\n\r\n", "\r\n\r\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			br := reader(tt.in + "GET /next")
			cr := NewChunkedReader(br)
			var trailers []string
			cr.OnTrailer = func(f Field) { trailers = append(trailers, string(f.Name)+": "+string(f.Value)) }
			body, err := io.ReadAll(cr)
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if string(body) != tt.body {
				t.Errorf("got body %q, want %q", body, tt.body)
			}
			if diff := cmp.Diff(tt.trailers, trailers); diff != "" {
				t.Errorf("trailers (-want +got):\n%s", diff)
			}
			if !cr.Done() {
				t.Error("Done: got false, want true")
			}
			if got := rest(br); got != "GET /next" {
				t.Errorf("left in the reader: got %q, want the next request", got)
			}
		})
	}
}

func TestChunkedReaderRefuses(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"0x prefix", "0x5\r\nhello\r\n0\r\n\r\n", errChunkExt},
		{"negative", "-5\r\nhello\r\n0\r\n\r\n", errChunkSize},
		{"plus sign", "+5\r\nhello\r\n0\r\n\r\n", errChunkSize},
		{"leading space", " 5\r\nhello\r\n0\r\n\r\n", errChunkSize},
		{"trailing space", "5 \r\nhello\r\n0\r\n\r\n", errChunkExt},
		{"space before an extension", "5 ;a\r\nhello\r\n0\r\n\r\n", errChunkExt},
		{"not hex", "g\r\n", errChunkSize},
		{"empty size line", "\r\nhello\r\n", errChunkSize},
		{"16 digits", "000000000000000a\r\n0123456789\r\n0\r\n\r\n", errChunkSize},
		{"overlong size", "1000000000000000\r\n", errChunkSize},
		{"empty extension", "5;\r\nhello\r\n0\r\n\r\n", errChunkExt},
		{"extension without a name", "5;=b\r\nhello\r\n0\r\n\r\n", errChunkExt},
		{"extension without a value", "5;a=\r\nhello\r\n0\r\n\r\n", errChunkExt},
		{"unterminated quoted extension", "5;a=\"b\r\nhello\r\n0\r\n\r\n", errChunkExt},
		{"CR in an extension", "5;a\rb\r\nhello\r\n0\r\n\r\n", errChunkExt},
		{"LF in a quoted extension", "5;a=\"b\nc\"\r\nhello\r\n0\r\n\r\n", errBareLF},
		{"bare LF after the size", "5\nhello\r\n0\r\n\r\n", errBareLF},
		{"data longer than the size", "5\r\nhelloX\r\n0\r\n\r\n", errChunkEnd},
		{"bare LF after the data", "5\r\nhello\n0\r\n\r\n", errChunkEnd},
		{"no CRLF after the data", "5\r\nhello0\r\n\r\n", errChunkEnd},
		{"truncated in the size line", "5", ErrTruncated},
		{"truncated in the data", "5\r\nhel", ErrTruncated},
		{"truncated after the data", "5\r\nhello", ErrTruncated},
		{"truncated after the data's CR", "5\r\nhello\r", ErrTruncated},
		{"truncated before the last chunk", "5\r\nhello\r\n", ErrTruncated},
		{"truncated in the trailers", "0\r\nX: y\r\n", ErrTruncated},
		{"truncated after the last chunk", "0\r\n", ErrTruncated},
		{"obs-folded trailer", "0\r\nX: y\r\n z\r\n\r\n", errTrailer},
		{"trailer without a colon", "0\r\njunk\r\n\r\n", errTrailer},
		{"trailer Content-Length", "0\r\nContent-Length: 5\r\n\r\n", errTrailer},
		{"trailer Transfer-Encoding", "0\r\ntransfer-encoding: chunked\r\n\r\n", errTrailer},
		{"bare LF ending the trailers", "0\r\nX: y\r\n\n", errBareLF},
		{"size line over the limit", "1;" + strings.Repeat("a", maxChunkLine) + "\r\nx\r\n0\r\n\r\n", errChunkExt},
		{"trailers over the limit", "0\r\nX: " + strings.Repeat("y", maxTrailerBytes) + "\r\n\r\n", errTrailer},
		{"mostly framing", strings.Repeat("1;"+strings.Repeat("e", 1000)+"\r\nx\r\n", 20) + "0\r\n\r\n", errChunkOverhead},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cr := NewChunkedReader(bufio.NewReaderSize(strings.NewReader(tt.in), 64<<10))
			_, err := io.ReadAll(cr)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got error %v, want %v", err, tt.want)
			}
			if cr.Done() {
				t.Error("Done: got true, want false")
			}
			if _, again := cr.Read(make([]byte, 1)); !errors.Is(again, tt.want) {
				t.Errorf("read after the error: got %v, want the same error again", again)
			}
		})
	}
}

// The limits themselves are allowed: a size line of exactly maxChunkLine
// bytes and a trailer section of exactly maxTrailerBytes.
func TestChunkedReaderAtLimits(t *testing.T) {
	line := "1;" + strings.Repeat("a", maxChunkLine-4) + "\r\n" // 1;aaa...CRLF is maxChunkLine bytes
	trailer := "X: " + strings.Repeat("y", maxTrailerBytes-7) + "\r\n"
	in := line + "x\r\n0\r\n" + trailer + "\r\n"
	if len(line) != maxChunkLine || len(trailer)+2 != maxTrailerBytes {
		t.Fatalf("test setup: line %d, trailers %d", len(line), len(trailer)+2)
	}
	cr := NewChunkedReader(reader(in)) // the default 4 KiB buffer holds the line exactly
	body, err := io.ReadAll(cr)
	if err != nil || string(body) != "x" {
		t.Fatalf("got %q, %v; want \"x\", no error", body, err)
	}
	if size, err := parseChunkSize([]byte("fffffffffffffff")); err != nil || size != 1<<60-1 {
		t.Errorf("largest size: got %d, %v; want %d", size, err, int64(1<<60-1))
	}
}

// A chunk that arrives in pieces is read as it comes, without waiting for
// the rest of the chunk.
func TestChunkedReaderStreams(t *testing.T) {
	pr, pw := io.Pipe()
	cr := NewChunkedReader(bufio.NewReader(pr))
	go func() {
		_, _ = pw.Write([]byte("a\r\nhello"))
		_, _ = pw.Write([]byte("world\r\n0\r\n\r\n"))
		_ = pw.Close()
	}()
	buf := make([]byte, 64)
	n, err := cr.Read(buf)
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("first read: got %q, %v; want \"hello\"", buf[:n], err)
	}
	rest, err := io.ReadAll(cr)
	if err != nil || string(rest) != "world" {
		t.Fatalf("rest: got %q, %v; want \"world\"", rest, err)
	}
}

func TestChunkedWriterRoundTrip(t *testing.T) {
	var out bytes.Buffer
	bw := bufio.NewWriter(&out)
	cw := NewChunkedWriter(bw)
	for _, p := range []string{"hello", "", strings.Repeat("x", 300)} {
		if n, err := cw.Write([]byte(p)); n != len(p) || err != nil {
			t.Fatalf("Write(%d bytes): got %d, %v", len(p), n, err)
		}
	}
	cw.AddTrailer("X-Sum", "abc")
	if err := cw.Close(); err != nil {
		t.Fatal(err)
	}
	_ = bw.Flush()
	want := "5\r\nhello\r\n12c\r\n" + strings.Repeat("x", 300) + "\r\n0\r\nX-Sum: abc\r\n\r\n"
	if out.String() != want {
		t.Fatalf("got %q, want %q", out.String(), want)
	}
	cr := NewChunkedReader(bufio.NewReader(&out))
	var trailers []string
	cr.OnTrailer = func(f Field) { trailers = append(trailers, string(f.Name)+"="+string(f.Value)) }
	body, err := io.ReadAll(cr)
	if err != nil || string(body) != "hello"+strings.Repeat("x", 300) || len(trailers) != 1 || trailers[0] != "X-Sum=abc" {
		t.Errorf("read back: got %d bytes, %v, trailers %q", len(body), err, trailers)
	}
	cw.Reset(bw)
	if err := cw.Close(); err != nil {
		t.Fatal(err)
	}
	_ = bw.Flush()
	if out.String() != "0\r\n\r\n" {
		t.Errorf("after Reset: got %q, want an empty body with no trailers", out.String())
	}
}
