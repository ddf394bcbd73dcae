package http1

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// head builds a request or response head from its lines, each ended by
// CRLF, and the empty line that ends the head.
func head(lines ...string) string { return strings.Join(lines, "\r\n") + "\r\n\r\n" }

// reqView is the part of a Request a test compares, as strings.
type reqView struct {
	Method, Target, Path, Host string
	Form, Minor                int
	ContentLength              int64
	Chunked, Close, Upgrade    bool
	Expect100                  bool
	Fields                     []string
}

func viewRequest(r *Request) reqView {
	v := reqView{
		Method: string(r.Method), Target: string(r.Target), Path: string(r.Path), Host: string(r.Host),
		Form: r.Form, Minor: r.Minor, ContentLength: r.ContentLength,
		Chunked: r.Chunked, Close: r.Close, Upgrade: r.Upgrade, Expect100: r.Expect100,
	}
	for _, f := range r.Fields {
		v.Fields = append(v.Fields, string(f.Name)+": "+string(f.Value))
	}
	return v
}

// get is the view of a plain HTTP/1.1 GET of "/" with the given Host.
func get(host string, fields ...string) reqView {
	return reqView{Method: "GET", Target: "/", Path: "/", Host: host, Minor: 1, ContentLength: -1,
		Fields: append([]string{"Host: " + host}, fields...)}
}

func with(v reqView, edit func(*reqView)) reqView { edit(&v); return v }

func TestParseRequestAccepts(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want reqView
	}{
		{"origin form", head("GET /a/b?c=d HTTP/1.1", "Host: example.com"),
			with(get("example.com"), func(v *reqView) { v.Target, v.Path = "/a/b?c=d", "/a/b?c=d" })},
		{"pct-encoded target", head("GET /a%20b%2F HTTP/1.1", "Host: a"),
			with(get("a"), func(v *reqView) { v.Target, v.Path = "/a%20b%2F", "/a%20b%2F" })},
		{"absolute form, Host agreeing in another case", head("GET http://a.example/p?q HTTP/1.1", "Host: A.Example"),
			with(get("a.example"), func(v *reqView) {
				v.Target, v.Path, v.Form, v.Fields = "http://a.example/p?q", "/p?q", FormAbsolute, []string{"Host: A.Example"}
			})},
		{"absolute form without a path", head("GET http://a HTTP/1.1", "Host: a"),
			with(get("a"), func(v *reqView) { v.Target, v.Path, v.Form = "http://a", "", FormAbsolute })},
		{"absolute form with only a query", head("GET http://a?x=1 HTTP/1.1", "Host: a"),
			with(get("a"), func(v *reqView) { v.Target, v.Path, v.Form = "http://a?x=1", "?x=1", FormAbsolute })},
		{"absolute form, https scheme in upper case and a port", head("GET HTTPS://a:8443/ HTTP/1.1", "Host: a:8443"),
			with(get("a:8443"), func(v *reqView) { v.Target, v.Form = "HTTPS://a:8443/", FormAbsolute })},
		{"absolute form, IPv6 literal", head("GET http://[::1]:8080/x HTTP/1.1", "Host: [::1]:8080"),
			with(get("[::1]:8080"), func(v *reqView) { v.Target, v.Path, v.Form = "http://[::1]:8080/x", "/x", FormAbsolute })},
		{"absolute form without Host in HTTP/1.0", head("GET http://a/x HTTP/1.0"),
			reqView{Method: "GET", Target: "http://a/x", Path: "/x", Host: "a", Form: FormAbsolute, ContentLength: -1, Close: true}},
		{"asterisk form for OPTIONS", head("OPTIONS * HTTP/1.1", "Host: a"),
			with(get("a"), func(v *reqView) { v.Method, v.Target, v.Path, v.Form = "OPTIONS", "*", "*", FormAsterisk })},
		{"authority form for CONNECT", head("CONNECT a.example:443 HTTP/1.1", "Host: a.example:443"),
			with(get("a.example:443"), func(v *reqView) { v.Method, v.Target, v.Path, v.Form = "CONNECT", "a.example:443", "", FormAuthority })},
		{"authority form, HTTP/1.0 without Host", head("CONNECT [2001:db8::1]:443 HTTP/1.0"),
			reqView{Method: "CONNECT", Target: "[2001:db8::1]:443", Host: "[2001:db8::1]:443", Form: FormAuthority, ContentLength: -1, Close: true}},
		{"leading CRLFs", "\r\n\r\n" + head("GET / HTTP/1.1", "Host: a"), get("a")},
		{"HTTP/1.0 closes by default", head("GET / HTTP/1.0"),
			reqView{Method: "GET", Target: "/", Path: "/", ContentLength: -1, Close: true}},
		{"HTTP/1.0 keep-alive", head("GET / HTTP/1.0", "Connection: Keep-Alive"),
			reqView{Method: "GET", Target: "/", Path: "/", ContentLength: -1, Fields: []string{"Connection: Keep-Alive"}}},
		{"HTTP/1.0 keep-alive and close", head("GET / HTTP/1.0", "Connection: keep-alive, close"),
			reqView{Method: "GET", Target: "/", Path: "/", ContentLength: -1, Close: true, Fields: []string{"Connection: keep-alive, close"}}},
		{"Connection close", head("GET / HTTP/1.1", "Host: a", "Connection: close"),
			with(get("a", "Connection: close"), func(v *reqView) { v.Close = true })},
		{"Connection token list", head("GET / HTTP/1.1", "Host: a", "Connection: x-hop ,\tClose, upgrade", "Connection: te"),
			with(get("a", "Connection: x-hop ,\tClose, upgrade", "Connection: te"), func(v *reqView) { v.Close, v.Upgrade = true, true })},
		{"Connection token that only starts with close", head("GET / HTTP/1.1", "Host: a", "Connection: closed, keep-alive-x"),
			get("a", "Connection: closed, keep-alive-x")},
		{"Expect 100-continue", head("PUT / HTTP/1.1", "Host: a", "Expect: 100-Continue", "Content-Length: 3"),
			with(get("a", "Expect: 100-Continue", "Content-Length: 3"), func(v *reqView) { v.Method, v.Expect100, v.ContentLength = "PUT", true, 3 })},
		{"Expect 100-continue in HTTP/1.0 does not wait", head("PUT / HTTP/1.0", "Expect: 100-continue", "Content-Length: 3"),
			reqView{Method: "PUT", Target: "/", Path: "/", ContentLength: 3, Close: true, Fields: []string{"Expect: 100-continue", "Content-Length: 3"}}},
		{"Content-Length with leading zeros and OWS", head("POST / HTTP/1.1", "Host: a", "Content-Length: \t007 "),
			with(get("a", "Content-Length: 007"), func(v *reqView) { v.Method, v.ContentLength = "POST", 7 })},
		{"Content-Length of 18 digits", head("POST / HTTP/1.1", "Host: a", "Content-Length: 999999999999999999"),
			with(get("a", "Content-Length: 999999999999999999"), func(v *reqView) { v.Method, v.ContentLength = "POST", 999999999999999999 })},
		{"Content-Length zero", head("POST / HTTP/1.1", "Host: a", "content-length: 0"),
			with(get("a", "content-length: 0"), func(v *reqView) { v.Method, v.ContentLength = "POST", 0 })},
		{"chunked", head("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked"),
			with(get("a", "Transfer-Encoding: chunked"), func(v *reqView) { v.Method, v.Chunked = "POST", true })},
		{"chunked in another case, with OWS", head("POST / HTTP/1.1", "Host: a", "transfer-encoding:\t Chunked \t"),
			with(get("a", "transfer-encoding: Chunked"), func(v *reqView) { v.Method, v.Chunked = "POST", true })},
		{"Trailer naming ordinary fields", head("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked", "Trailer: x-sum, Expires"),
			with(get("a", "Transfer-Encoding: chunked", "Trailer: x-sum, Expires"), func(v *reqView) { v.Method, v.Chunked = "POST", true })},
		{"Host with port, underscore and tilde", head("GET / HTTP/1.1", "Host: my_host~1.example:8080"), get("my_host~1.example:8080")},
		{"Host as IPv6 literal", head("GET / HTTP/1.1", "Host: [::ffff:10.0.0.1]"), get("[::ffff:10.0.0.1]")},
		{"obs-text, tab and empty values", head("GET / HTTP/1.1", "Host: a", "X-Name: caf\xc3\xa9\tau lait", "X-Empty:"),
			get("a", "X-Name: caf\xc3\xa9\tau lait", "X-Empty: ")},
		{"token characters in names and methods", head("M-SEARCH! / HTTP/1.1", "Host: a", "x!#$%&'*+-.^_`|~9: v"),
			with(get("a", "x!#$%&'*+-.^_`|~9: v"), func(v *reqView) { v.Method = "M-SEARCH!" })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Request
			n, err := ParseRequest([]byte(tt.in), &r, Limits{})
			if err != nil {
				t.Fatalf("ParseRequest: got error %v, want none", err)
			}
			if n != len(tt.in) {
				t.Errorf("got length %d, want %d", n, len(tt.in))
			}
			got := viewRequest(&r)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseRequestRefuses(t *testing.T) {
	post := func(fields ...string) string {
		return head(append([]string{"POST / HTTP/1.1", "Host: a"}, fields...)...)
	}
	tests := []struct {
		name   string
		in     string
		lim    Limits
		status int
	}{
		// Framing: CL.TE, TE.CL and every way to give a length twice.
		{"CL.TE", post("Content-Length: 5", "Transfer-Encoding: chunked"), Limits{}, 400},
		{"TE.CL", post("Transfer-Encoding: chunked", "Content-Length: 5"), Limits{}, 400},
		{"CL.TE with an obs-folded TE", post("Content-Length: 5", "Transfer-Encoding:", " chunked"), Limits{}, 400},
		{"two Content-Lengths that differ", post("Content-Length: 5", "Content-Length: 6"), Limits{}, 400},
		{"two equal Content-Lengths", post("Content-Length: 5", "Content-Length: 5"), Limits{}, 400},
		{"Content-Length list", post("Content-Length: 5, 5"), Limits{}, 400},
		{"Content-Length with a plus", post("Content-Length: +5"), Limits{}, 400},
		{"Content-Length negative", post("Content-Length: -1"), Limits{}, 400},
		{"Content-Length with inner space", post("Content-Length: 5 0"), Limits{}, 400},
		{"Content-Length in hex", post("Content-Length: 0x5"), Limits{}, 400},
		{"Content-Length decimal", post("Content-Length: 5.0"), Limits{}, 400},
		{"Content-Length empty", post("Content-Length:"), Limits{}, 400},
		{"Content-Length of 19 digits", post("Content-Length: 1000000000000000000"), Limits{}, 400},
		// Transfer-Encoding: TE.TE obfuscations and codings.
		{"TE given twice", post("Transfer-Encoding: chunked", "Transfer-Encoding: chunked"), Limits{}, 400},
		{"TE chunked twice in a list", post("Transfer-Encoding: chunked, chunked"), Limits{}, 400},
		{"TE chunked before identity", post("Transfer-Encoding: chunked, identity"), Limits{}, 400},
		{"TE chunked with a trailing comma", post("Transfer-Encoding: chunked,"), Limits{}, 400},
		{"TE with a leading comma", post("Transfer-Encoding: , chunked"), Limits{}, 400},
		{"TE chunked with a parameter", post("Transfer-Encoding: chunked;q=1"), Limits{}, 400},
		{"TE empty", post("Transfer-Encoding:"), Limits{}, 400},
		{"TE chunked glued to junk", post("Transfer-Encoding: chunked\"x\""), Limits{}, 400},
		{"TE with a vertical tab", post("Transfer-Encoding: \x0bchunked"), Limits{}, 400},
		{"TE with space before the colon", post("Transfer-Encoding : chunked"), Limits{}, 400},
		{"TE with tab before the colon", post("Transfer-Encoding\t: chunked"), Limits{}, 400},
		{"TE by obs-fold", post("X: y", "Transfer-Encoding:", "\tchunked"), Limits{}, 400},
		{"TE xchunked", post("Transfer-Encoding: xchunked"), Limits{}, 501},
		{"TE gzip", post("Transfer-Encoding: gzip"), Limits{}, 501},
		{"TE identity", post("Transfer-Encoding: identity"), Limits{}, 501},
		{"TE gzip then chunked", post("Transfer-Encoding: gzip, chunked"), Limits{}, 501},
		{"TE on HTTP/1.0", head("POST / HTTP/1.0", "Transfer-Encoding: chunked"), Limits{}, 400},
		{"TE on HTTP/1.0 with CL", head("POST / HTTP/1.0", "Transfer-Encoding: chunked", "Content-Length: 3"), Limits{}, 400},
		{"Trailer naming Content-Length", post("Transfer-Encoding: chunked", "Trailer: x, content-length"), Limits{}, 400},
		{"Trailer naming Transfer-Encoding", post("Trailer: Transfer-Encoding"), Limits{}, 400},
		// Lines and fields.
		{"obs-fold", head("GET / HTTP/1.1", "Host: a", "X: a", " b"), Limits{}, 400},
		{"first field line folded", head("GET / HTTP/1.1", " Host: a"), Limits{}, 400},
		{"bare LF ending the head", "GET / HTTP/1.1\r\nHost: a\n\n", Limits{}, 400},
		{"bare LF ending the request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", Limits{}, 400},
		{"bare CR in a value", head("GET / HTTP/1.1", "Host: a", "X: a\rb"), Limits{}, 400},
		{"CR before the CRLF", head("GET / HTTP/1.1", "Host: a", "X: a\r"), Limits{}, 400},
		{"bare CR in the request line", head("GET /\r HTTP/1.1", "Host: a"), Limits{}, 400},
		{"NUL in a value", head("GET / HTTP/1.1", "Host: a", "X: a\x00b"), Limits{}, 400},
		{"DEL in a value", head("GET / HTTP/1.1", "Host: a", "X: a\x7f"), Limits{}, 400},
		{"control byte in a value", head("GET / HTTP/1.1", "Host: a", "X: \x01"), Limits{}, 400},
		{"space before a colon", head("GET / HTTP/1.1", "Host : a"), Limits{}, 400},
		{"space inside a name", head("GET / HTTP/1.1", "Host: a", "X Y: z"), Limits{}, 400},
		{"separator in a name", head("GET / HTTP/1.1", "Host: a", "X(y): z"), Limits{}, 400},
		{"NUL in a name", head("GET / HTTP/1.1", "Host: a", "X\x00: z"), Limits{}, 400},
		{"empty name", head("GET / HTTP/1.1", "Host: a", ": z"), Limits{}, 400},
		{"line without a colon", head("GET / HTTP/1.1", "Host: a", "junk"), Limits{}, 400},
		// Request line.
		{"method with a separator", head("G(T / HTTP/1.1", "Host: a"), Limits{}, 400},
		{"empty method", head(" / HTTP/1.1", "Host: a"), Limits{}, 400},
		{"two spaces after the method", head("GET  / HTTP/1.1", "Host: a"), Limits{}, 400},
		{"tab as separator", head("GET\t/\tHTTP/1.1", "Host: a"), Limits{}, 400},
		{"no version", head("GET /", "Host: a"), Limits{}, 400},
		{"space after the version", head("GET / HTTP/1.1 ", "Host: a"), Limits{}, 400},
		{"space inside the target", head("GET /a b HTTP/1.1", "Host: a"), Limits{}, 400},
		{"more than four leading CRLFs", strings.Repeat("\r\n", 5) + head("GET / HTTP/1.1", "Host: a"), Limits{}, 400},
		{"lower-case version", head("GET / http/1.1", "Host: a"), Limits{}, 400},
		{"version with two minor digits", head("GET / HTTP/1.10", "Host: a"), Limits{}, 400},
		{"version without a minor", head("GET / HTTP/1", "Host: a"), Limits{}, 400},
		{"HTTP/2.0", head("GET / HTTP/2.0", "Host: a"), Limits{}, 505},
		{"HTTP/1.2", head("GET / HTTP/1.2", "Host: a"), Limits{}, 505},
		{"HTTP/0.9", head("GET / HTTP/0.9", "Host: a"), Limits{}, 505},
		// Targets.
		{"fragment", head("GET /a#b HTTP/1.1", "Host: a"), Limits{}, 400},
		{"bad pct-encoding", head("GET /%zz HTTP/1.1", "Host: a"), Limits{}, 400},
		{"truncated pct-encoding", head("GET /a%4 HTTP/1.1", "Host: a"), Limits{}, 400},
		{"raw non-ASCII", head("GET /caf\xc3\xa9 HTTP/1.1", "Host: a"), Limits{}, 400},
		{"relative target", head("GET a/b HTTP/1.1", "Host: a"), Limits{}, 400},
		{"asterisk for GET", head("GET * HTTP/1.1", "Host: a"), Limits{}, 400},
		{"other scheme", head("GET ftp://a/ HTTP/1.1", "Host: a"), Limits{}, 400},
		{"absolute form with empty authority", head("GET http:///x HTTP/1.1", "Host: a"), Limits{}, 400},
		{"absolute form with userinfo", head("GET http://u@a/ HTTP/1.1", "Host: a"), Limits{}, 400},
		{"absolute form with unclosed IPv6", head("GET http://[::1/ HTTP/1.1", "Host: a"), Limits{}, 400},
		{"absolute form with IPv4 in brackets", head("GET http://[10.0.0.1]/ HTTP/1.1", "Host: a"), Limits{}, 400},
		{"absolute form with two colons", head("GET http://a:1:2/ HTTP/1.1", "Host: a:1:2"), Limits{}, 400},
		{"absolute form disagreeing with Host", head("GET http://a/ HTTP/1.1", "Host: b"), Limits{}, 400},
		{"absolute form with a port Host lacks", head("GET http://a:80/ HTTP/1.1", "Host: a"), Limits{}, 400},
		{"absolute form without Host in HTTP/1.1", head("GET http://a/ HTTP/1.1"), Limits{}, 400},
		{"CONNECT without a port", head("CONNECT a HTTP/1.1", "Host: a"), Limits{}, 400},
		{"CONNECT with an empty port", head("CONNECT a: HTTP/1.1", "Host: a:"), Limits{}, 400},
		{"CONNECT with a named port", head("CONNECT a:https HTTP/1.1", "Host: a:https"), Limits{}, 400},
		{"CONNECT disagreeing with Host", head("CONNECT a:443 HTTP/1.1", "Host: b:443"), Limits{}, 400},
		// Host.
		{"no Host in HTTP/1.1", head("GET / HTTP/1.1"), Limits{}, 400},
		{"Host twice", head("GET / HTTP/1.1", "Host: a", "Host: a"), Limits{}, 400},
		{"Host twice in another case", head("GET / HTTP/1.1", "Host: a", "host: b"), Limits{}, 400},
		{"empty Host", head("GET / HTTP/1.1", "Host:"), Limits{}, 400},
		{"Host with a space", head("GET / HTTP/1.1", "Host: a b"), Limits{}, 400},
		{"Host with a path", head("GET / HTTP/1.1", "Host: a/b"), Limits{}, 400},
		{"Host with userinfo", head("GET / HTTP/1.1", "Host: u@a"), Limits{}, 400},
		{"Host with a named port", head("GET / HTTP/1.1", "Host: a:b"), Limits{}, 400},
		{"Host with pct-encoding", head("GET / HTTP/1.1", "Host: a%2e"), Limits{}, 400},
		{"Host with a bad IPv6 literal", head("GET / HTTP/1.1", "Host: [::g]"), Limits{}, 400},
		// Expect.
		{"unknown expectation", head("PUT / HTTP/1.1", "Host: a", "Expect: 200-ok"), Limits{}, 417},
		// Limits.
		{"request line too long", head("GET /"+strings.Repeat("a", 64)+" HTTP/1.1", "Host: a"), Limits{MaxLine: 64}, 414},
		{"request line too long, no end yet", "GET /" + strings.Repeat("a", 80), Limits{MaxLine: 64}, 414},
		{"too many fields", head("GET / HTTP/1.1", "Host: a", "A: 1", "B: 2"), Limits{MaxFields: 2}, 431},
		{"head too large", head("GET / HTTP/1.1", "Host: a", "A: "+strings.Repeat("x", 100)), Limits{MaxHead: 100}, 431},
		{"head too large, no end yet", "GET / HTTP/1.1\r\nHost: a\r\nA: " + strings.Repeat("x", 200), Limits{MaxHead: 100}, 431},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Request
			_, err := ParseRequest([]byte(tt.in), &r, tt.lim)
			var perr *Error
			if !errors.As(err, &perr) {
				t.Fatalf("ParseRequest: got error %v, want an *Error with status %d", err, tt.status)
			}
			if got := StatusOf(err); got != tt.status {
				t.Errorf("got status %d (%s), want %d", got, perr.Reason, tt.status)
			}
		})
	}
}

// Every proper prefix of a good head asks for more bytes: nothing in the
// head is decided before its end is buffered.
func TestParseRequestIncomplete(t *testing.T) {
	in := "\r\n" + head("POST http://a/x HTTP/1.1", "Host: a", "Transfer-Encoding: chunked", "X: y")
	var r Request
	for i := 0; i < len(in); i++ {
		if _, err := ParseRequest([]byte(in[:i]), &r, Limits{}); !errors.Is(err, ErrIncomplete) {
			t.Fatalf("prefix of %d bytes %q: got %v, want ErrIncomplete", i, in[:i], err)
		}
	}
	if _, err := ParseRequest([]byte(in), &r, Limits{}); err != nil {
		t.Fatalf("whole head: got %v, want no error", err)
	}
}

// Pipelined heads back to back: each parse stops at its own head's end.
func TestParseRequestPipelined(t *testing.T) {
	first := head("GET /1 HTTP/1.1", "Host: a")
	second := head("HEAD /2 HTTP/1.1", "Host: a", "Connection: close")
	third := head("OPTIONS * HTTP/1.1", "Host: a")
	buf := []byte(first + second + third)
	want := []struct {
		method, target string
		close          bool
	}{{"GET", "/1", false}, {"HEAD", "/2", true}, {"OPTIONS", "*", false}}
	var r Request
	off := 0
	for i, w := range want {
		n, err := ParseRequest(buf[off:], &r, Limits{})
		if err != nil {
			t.Fatalf("request %d: got error %v", i, err)
		}
		if string(r.Method) != w.method || string(r.Target) != w.target || r.Close != w.close {
			t.Errorf("request %d: got %s %s close=%v, want %s %s close=%v", i, r.Method, r.Target, r.Close, w.method, w.target, w.close)
		}
		off += n
	}
	if off != len(buf) {
		t.Errorf("got %d bytes consumed, want %d", off, len(buf))
	}
}

// A reused Request keeps no state from the one before.
func TestRequestReuse(t *testing.T) {
	var r Request
	if _, err := ParseRequest([]byte(head("PUT / HTTP/1.1", "Host: a", "Expect: 100-continue", "Transfer-Encoding: chunked", "Connection: close, upgrade")), &r, Limits{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseRequest([]byte(head("GET / HTTP/1.1", "Host: b")), &r, Limits{}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(get("b"), viewRequest(&r)); diff != "" {
		t.Errorf("second request (-want +got):\n%s", diff)
	}
}

func TestStatusOf(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want int
	}{{errTEUnknown, 501}, {errURITooLong, 414}, {errors.New("other"), 400}, {ErrIncomplete, 400}} {
		if got := StatusOf(tt.err); got != tt.want {
			t.Errorf("StatusOf(%v): got %d, want %d", tt.err, got, tt.want)
		}
	}
}
