package http1

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/textproto"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// The differential fuzz targets feed the same bytes to this codec and to
// net/http. The codec may refuse what net/http takes (it is stricter on
// purpose); it must never take what net/http refuses, and when both take a
// message they must agree on what it is: method, target, Host, header set,
// framing, body bytes, trailers, and where the next message starts.
//
// net/http quirks the comparison accounts for, each normalized on the
// codec's side so that a real difference still shows:
//   - ReadRequest does not skip the empty lines RFC 9112 section 2.2 lets a
//     server ignore before a request line; its server does (up to 4 CR or LF
//     bytes, after a POST only). The codec skips up to 4 CRLFs, so the
//     oracle gets the input without them.
//   - ReadRequest adds "Cache-Control: no-cache" when Pragma is "no-cache"
//     and Cache-Control is absent (fixPragmaCacheControl).
//   - net/http moves Transfer-Encoding out of the header map (the codec's
//     Chunked is compared instead), drops Trailer from it on a chunked body,
//     and drops Connection from a response's when it lists "close".
//   - net/http's Trailer map holds the announced names with nil values until
//     the trailers arrive; names announced but never sent are ignored.
//   - net/http would drop Content-Length next to Transfer-Encoding and
//     deduplicate equal Content-Lengths; the codec refuses both, so neither
//     case reaches the comparison.
//   - A response to HEAD without a length: the codec cannot know the method
//     and sets Close (a needless but safe close); net/http does not.

// message is what both parsers must agree on.
type message struct {
	Method, Target, Host string
	Status               int
	Reason               string
	Header               http.Header
	Close                bool
	Framing              string // none, length, chunked or close
	Body                 string
	Trailer              http.Header
	Consumed             int // bytes of input the message took, head and body
}

// consumed is how much of in a reader over it has taken.
func consumed(in []byte, src *bytes.Reader, br *bufio.Reader) int {
	return len(in) - src.Len() - br.Buffered()
}

func codecHeader(fields []Field) http.Header {
	h := http.Header{}
	for _, f := range fields {
		name := textproto.CanonicalMIMEHeaderKey(string(f.Name))
		h[name] = append(h[name], string(f.Value))
	}
	delete(h, "Host")
	delete(h, "Transfer-Encoding")
	if p := h["Pragma"]; len(p) > 0 && p[0] == "no-cache" && h["Cache-Control"] == nil {
		h["Cache-Control"] = []string{"no-cache"}
	}
	return h
}

// hasToken reports whether a Connection-style list holds tok.
func hasToken(values []string, tok string) bool {
	for _, v := range values {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(textproto.TrimString(t), tok) {
				return true
			}
		}
	}
	return false
}

// codecBody reads the body the codec's framing says follows at in[off:].
func codecBody(in []byte, off int, length int64, m *message) error {
	src := bytes.NewReader(in[off:])
	br := bufio.NewReader(src)
	var body io.Reader = strings.NewReader("")
	switch m.Framing {
	case "chunked":
		cr := NewChunkedReader(br)
		cr.OnTrailer = func(f Field) {
			if m.Trailer == nil {
				m.Trailer = http.Header{}
			}
			name := textproto.CanonicalMIMEHeaderKey(string(f.Name))
			m.Trailer[name] = append(m.Trailer[name], string(f.Value))
		}
		body = cr
	case "length":
		body = NewLengthReader(br, length)
	case "close":
		body = br
	}
	b, err := io.ReadAll(body)
	m.Body = string(b)
	m.Consumed = off + consumed(in[off:], src, br)
	return err
}

func codecRequest(in []byte) (*message, error) {
	var r Request
	n, err := ParseRequest(in, &r, Limits{})
	if err != nil {
		return nil, err
	}
	m := &message{Method: string(r.Method), Target: string(r.Target), Host: string(r.Host),
		Header: codecHeader(r.Fields), Close: r.Close, Framing: "none"}
	switch {
	case r.Chunked:
		m.Framing = "chunked"
		delete(m.Header, "Trailer")
	case r.ContentLength > 0:
		m.Framing = "length"
	}
	return m, codecBody(in, n, r.ContentLength, m)
}

func stdRequest(in []byte) (*message, error) {
	skip := 0
	for skip < 2*maxLeadingCRLF && bytes.HasPrefix(in[skip:], []byte("\r\n")) {
		skip += 2
	}
	src := bytes.NewReader(in[skip:])
	br := bufio.NewReader(src)
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, err
	}
	m := &message{Method: req.Method, Target: req.RequestURI, Host: req.Host, Header: req.Header,
		Close: req.Close, Framing: stdFraming(req.Body, req.TransferEncoding, req.ContentLength)}
	delete(m.Header, "Host")
	b, err := io.ReadAll(req.Body)
	m.Body, m.Trailer = string(b), sentTrailers(req.Trailer)
	m.Consumed = skip + consumed(in[skip:], src, br)
	return m, err
}

func stdFraming(body io.ReadCloser, te []string, length int64) string {
	switch {
	case body == http.NoBody:
		return "none"
	case len(te) > 0:
		return "chunked"
	case length > 0:
		return "length"
	}
	return "close"
}

func sentTrailers(t http.Header) http.Header {
	var out http.Header
	for k, v := range t {
		if v != nil {
			if out == nil {
				out = http.Header{}
			}
			out[k] = v
		}
	}
	return out
}

func codecResponse(in []byte, method string) (*message, error) {
	var r Response
	n, err := ParseResponse(in, &r, Limits{})
	if err != nil {
		return nil, err
	}
	m := &message{Status: r.Status, Reason: string(r.Reason), Header: codecHeader(r.Fields), Close: r.Close, Framing: "none"}
	conn := m.Header["Connection"]
	if method == "HEAD" && !r.Chunked && r.ContentLength < 0 {
		m.Close = hasToken(conn, "close") || r.Minor == 0 && !hasToken(conn, "keep-alive")
	}
	if r.Chunked {
		delete(m.Header, "Trailer")
	}
	if r.Minor == 1 && hasToken(conn, "close") {
		delete(m.Header, "Connection")
	}
	switch {
	case !BodyAllowed(method, r.Status):
	case r.Chunked:
		m.Framing = "chunked"
	case r.ContentLength > 0:
		m.Framing = "length"
	case r.ContentLength < 0:
		m.Framing = "close"
	}
	return m, codecBody(in, n, r.ContentLength, m)
}

func stdResponse(in []byte, method string) (*message, error) {
	src := bytes.NewReader(in)
	br := bufio.NewReader(src)
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		return nil, err
	}
	m := &message{Status: resp.StatusCode, Reason: strings.TrimPrefix(resp.Status[3:], " "), Header: resp.Header,
		Close: resp.Close, Framing: stdFraming(resp.Body, resp.TransferEncoding, resp.ContentLength)}
	b, err := io.ReadAll(resp.Body)
	m.Body, m.Trailer = string(b), sentTrailers(resp.Trailer)
	m.Consumed = consumed(in, src, br)
	return m, err
}

// differ fails t when the codec took a message net/http refused, or both
// took it and disagree.
func differ(t *testing.T, in []byte, got *message, gotErr error, want *message, wantErr error) {
	t.Helper()
	if gotErr != nil {
		return // stricter than net/http: allowed
	}
	if wantErr != nil {
		t.Fatalf("the codec takes what net/http refuses (%v): %q", wantErr, in)
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("the codec and net/http disagree on %q (-net/http +codec):\n%s", in, diff)
	}
}

func FuzzRequest(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got, gotErr := codecRequest(in)
		if gotErr != nil {
			return
		}
		want, wantErr := stdRequest(in)
		differ(t, in, got, gotErr, want, wantErr)
	})
}

func FuzzResponse(f *testing.F) {
	for _, s := range responseSeeds {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, in []byte, head bool) {
		method := "GET"
		if head {
			method = "HEAD"
		}
		got, gotErr := codecResponse(in, method)
		if gotErr != nil {
			return
		}
		want, wantErr := stdResponse(in, method)
		differ(t, in, got, gotErr, want, wantErr)
	})
}

// The harness is not vacuous: the well-formed seeds pass both parsers,
// compare equal and take bytes of the input.
func TestDifferentialHarness(t *testing.T) {
	for _, in := range requestSeeds[:goodRequestSeeds] {
		got, err := codecRequest([]byte(in))
		if err != nil {
			t.Fatalf("codec refuses the good seed %q: %v", in, err)
		}
		want, err := stdRequest([]byte(in))
		if err != nil {
			t.Fatalf("net/http refuses the good seed %q: %v", in, err)
		}
		if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("seed %q (-net/http +codec):\n%s", in, diff)
		}
		if got.Consumed == 0 || got.Consumed > len(in) {
			t.Errorf("seed %q: consumed %d of %d bytes", in, got.Consumed, len(in))
		}
	}
	for _, in := range responseSeeds[:goodResponseSeeds] {
		for _, method := range []string{"GET", "HEAD"} {
			got, err := codecResponse([]byte(in), method)
			if err != nil {
				t.Fatalf("codec refuses the good seed %q: %v", in, err)
			}
			want, err := stdResponse([]byte(in), method)
			if err != nil {
				t.Fatalf("net/http refuses the good seed %q: %v", in, err)
			}
			if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s seed %q (-net/http +codec):\n%s", method, in, diff)
			}
		}
	}
}

// crlf turns the fuzzer's "\n" line ends into CRLF, so mutations of a
// structured target stay inside lines instead of breaking them.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// FuzzRequestParts is FuzzRequest on messages assembled from a request line
// and field lines: far more of its inputs pass the codec, so the
// comparison runs on more of them (case, spacing and list syntax of the
// framing fields, targets, Host).
func FuzzRequestParts(f *testing.F) {
	f.Add("GET", "/", true, "Host: a\nConnection: close\n", "")
	f.Add("POST", "http://a/x", true, "Host: a\nTransfer-Encoding: chunked\nTrailer: X\n", "5;e=1\nhello\n0\nX: 1\n\n"+pipelined)
	f.Add("PUT", "/x?y", true, "Host: a\nContent-Length: 5\nExpect: 100-continue\n", "hello"+pipelined)
	f.Add("GET", "/", false, "Connection: keep-alive\nPragma: no-cache\n", "")
	f.Add("CONNECT", "a:443", true, "Host: a:443\n", "")
	f.Add("OPTIONS", "*", true, "Host: [::1]:8080\n", "")
	f.Fuzz(func(t *testing.T, method, target string, minor1 bool, fields, body string) {
		version := "HTTP/1.0"
		if minor1 {
			version = "HTTP/1.1"
		}
		in := []byte(method + " " + target + " " + version + "\r\n" + crlf(fields) + "\r\n" + crlf(body))
		got, gotErr := codecRequest(in)
		if gotErr != nil {
			return
		}
		want, wantErr := stdRequest(in)
		differ(t, in, got, gotErr, want, wantErr)
	})
}

// FuzzResponseParts is FuzzResponse on messages assembled from a status
// line and field lines.
func FuzzResponseParts(f *testing.F) {
	f.Add("200 OK", true, "Content-Length: 5\n", "hello", false)
	f.Add("200 OK", true, "Transfer-Encoding: chunked\nTrailer: X\n", "5\nhello\n0\nX: 1\n\n", false)
	f.Add("204", true, "Connection: close\n", "", true)
	f.Add("200 OK", false, "Connection: keep-alive\nContent-Length: 1\n", "x", false)
	f.Add("304 Not Modified", true, "Content-Length: 9\nPragma: no-cache\n", "", false)
	f.Fuzz(func(t *testing.T, status string, minor1 bool, fields, body string, head bool) {
		version, method := "HTTP/1.0 ", "GET"
		if minor1 {
			version = "HTTP/1.1 "
		}
		if head {
			method = "HEAD"
		}
		in := []byte(version + status + "\r\n" + crlf(fields) + "\r\n" + crlf(body))
		got, gotErr := codecResponse(in, method)
		if gotErr != nil {
			return
		}
		want, wantErr := stdResponse(in, method)
		differ(t, in, got, gotErr, want, wantErr)
	})
}
