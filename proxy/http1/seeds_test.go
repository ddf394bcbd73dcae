package http1

import "strings"

// post is a POST head to / with Host and the given fields, then body.
func post(body string, fields ...string) string {
	return head(append([]string{"POST / HTTP/1.1", "Host: a"}, fields...)...) + body
}

const pipelined = "GET /next HTTP/1.1\r\nHost: a\r\n\r\n"

// The first seeds of each list are well formed: both parsers must take them.
const goodRequestSeeds, goodResponseSeeds = 16, 10

// requestSeeds are the smuggling classes of issue 12, each also followed by
// a request, so a disagreement on where the body ends shows.
var requestSeeds = []string{
	// Plain, well-formed messages: the baseline the fuzzer mutates.
	head("GET / HTTP/1.1", "Host: a"),
	head("GET /a?b=c HTTP/1.1", "Host: a", "Accept: */*", "Cookie: x=1", "Cookie: y=2") + pipelined,
	post("hello", "Content-Length: 5") + pipelined,
	post("5\r\nhello\r\n0\r\n\r\n", "Transfer-Encoding: chunked") + pipelined,
	post("5;ext=1;q=\"a b\"\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n", "Transfer-Encoding: chunked", "Trailer: X-Sum") + pipelined,
	"\r\n" + head("GET / HTTP/1.0", "Connection: keep-alive"),
	head("OPTIONS * HTTP/1.1", "Host: a"),
	head("CONNECT a:443 HTTP/1.1", "Host: a:443"),
	head("GET / HTTP/1.1", "Host: a", "Pragma: no-cache", "Connection: close, x-hop", "X-Hop: 1"),
	head("PUT /x HTTP/1.1", "Host: a", "Expect: 100-continue", "Content-Length: 2") + "hi",
	// Case variants: framing and connection tokens are case-insensitive,
	// and the fuzzer alone seldom flips the one byte that shows it.
	head("GET / HTTP/1.1", "HOST: a", "Connection: CLOSE"),
	head("GET / HTTP/1.1", "host: a", "connection: x, Close"),
	head("GET / HTTP/1.0", "CONNECTION: KEEP-ALIVE"),
	head("POST / HTTP/1.1", "Host: a", "TRANSFER-ENCODING: CHUNKED") + "A\r\n0123456789\r\n0\r\n\r\n" + pipelined,
	head("POST / HTTP/1.1", "Host: a", "content-length: 2") + "hi" + pipelined,
	head("GET / HTTP/1.1", "Host: a", "Pragma: no-cache", "Cache-Control: max-age=0"),
	// CL.TE and TE.CL.
	post("0\r\n\r\nG", "Content-Length: 6", "Transfer-Encoding: chunked") + pipelined,
	post("5c\r\nGPOST / HTTP/1.1\r\n\r\n0\r\n\r\n", "Transfer-Encoding: chunked", "Content-Length: 4") + pipelined,
	// TE.TE obfuscations.
	post("0\r\n\r\n", "Transfer-Encoding:  chunked") + pipelined,
	post("0\r\n\r\n", "Transfer-Encoding: chunked ") + pipelined,
	post("0\r\n\r\n", "Transfer-Encoding: Chunked") + pipelined,
	post("0\r\n\r\n", "Transfer-Encoding: xchunked") + pipelined,
	post("0\r\n\r\n", "Transfer-Encoding: chunked, identity") + pipelined,
	post("0\r\n\r\n", "Transfer-Encoding:\tchunked") + pipelined,
	post("0\r\n\r\n", "Transfer-Encoding\t: chunked") + pipelined,
	post("0\r\n\r\n", "Transfer-Encoding : chunked") + pipelined,
	post("0\r\n\r\n", "X: y", "Transfer-Encoding:", " chunked") + pipelined,
	post("0\r\n\r\n", "Transfer-Encoding: chunked", "Transfer-Encoding: identity") + pipelined,
	post("0\r\n\r\n", "Transfer_Encoding: chunked", "Content-Length: 5") + pipelined,
	post("0\r\n\r\n", "Transfer-Encoding: \x0bchunked") + pipelined,
	// Duplicated Content-Length and Host.
	post("hello", "Content-Length: 5", "Content-Length: 5") + pipelined,
	post("hello", "Content-Length: 5", "Content-Length: 6") + pipelined,
	post("hello", "Content-Length: 5, 5") + pipelined,
	post("hello", "Content-Length: +5") + pipelined,
	post("hello", "Content-Length: 05") + pipelined,
	head("GET / HTTP/1.1", "Host: a", "Host: b"),
	head("GET / HTTP/1.1", "Host: a", "host: a"),
	// Folded headers, NUL, CR and LF in values.
	head("GET / HTTP/1.1", "Host: a", "X: a", " b"),
	head("GET / HTTP/1.1", " Host: a"),
	head("GET / HTTP/1.1", "Host: a", "X: a\x00b"),
	head("GET / HTTP/1.1", "Host: a", "X: a\rb"),
	"GET / HTTP/1.1\r\nHost: a\r\nX: a\nb\r\n\r\n",
	"GET / HTTP/1.1\nHost: a\n\n",
	head("GET / HTTP/1.1", "Host: a", "X: a\r"),
	// Chunk tricks.
	post("0x5\r\nhello\r\n0\r\n\r\n", "Transfer-Encoding: chunked") + pipelined,
	post("-5\r\nhello\r\n0\r\n\r\n", "Transfer-Encoding: chunked") + pipelined,
	post("10000000000000005\r\nhello\r\n0\r\n\r\n", "Transfer-Encoding: chunked") + pipelined,
	post("5;a\rb\r\nhello\r\n0\r\n\r\n", "Transfer-Encoding: chunked") + pipelined,
	post("5 ;a\r\nhello\r\n0\r\n\r\n", "Transfer-Encoding: chunked") + pipelined,
	post("5\r\nhello0\r\n\r\n", "Transfer-Encoding: chunked") + pipelined,
	post("5\nhello\n0\n\n", "Transfer-Encoding: chunked") + pipelined,
	post("5\r\nhello\r\n0\r\nContent-Length: 5\r\n\r\n", "Transfer-Encoding: chunked") + pipelined,
	post(strings.Repeat("1;"+strings.Repeat("e", 200)+"\r\nx\r\n", 90)+"0\r\n\r\n", "Transfer-Encoding: chunked"),
	// Absolute-form mismatches.
	head("GET http://a/ HTTP/1.1", "Host: b"),
	head("GET http://a:80/ HTTP/1.1", "Host: a"),
	head("GET http://A/ HTTP/1.1", "Host: a"),
	head("GET http://a@b/ HTTP/1.1", "Host: b"),
	head("GET http://[::1]/ HTTP/1.1", "Host: [::1]"),
	head("GET http://a/%zz HTTP/1.1", "Host: a"),
	head("CONNECT a:443 HTTP/1.1", "Host: b:443"),
	// HTTP/1.0 with Transfer-Encoding.
	head("POST / HTTP/1.0", "Transfer-Encoding: chunked") + "5\r\nhello\r\n0\r\n\r\n" + pipelined,
	head("POST / HTTP/1.0", "Transfer-Encoding: chunked", "Content-Length: 5") + "hello" + pipelined,
}

var responseSeeds = []string{
	head("HTTP/1.1 200 OK", "Content-Length: 5") + "hello" + "HTTP/1.1 204 No Content\r\n\r\n",
	head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked", "Trailer: X-Sum") + "5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n",
	head("HTTP/1.1 200 OK", "Content-Type: text/plain") + "to the close",
	head("HTTP/1.0 200 OK") + "to the close",
	head("HTTP/1.0 200 OK", "Connection: keep-alive", "Content-Length: 2") + "hi",
	head("HTTP/1.1 204") + "junk",
	head("HTTP/1.1 304 Not Modified", "Content-Length: 5", "ETag: \"x\""),
	head("HTTP/1.1 100 Continue") + head("HTTP/1.1 200 OK", "Content-Length: 0"),
	head("HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade"),
	head("HTTP/1.1 200 OK", "Connection: close", "Pragma: no-cache", "Content-Length: 0"),
	head("HTTP/1.1 200 OK", "Content-Length: 3", "Transfer-Encoding: chunked") + "3\r\nabc\r\n0\r\n\r\n",
	head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked", "Content-Length: 3") + "abc",
	head("HTTP/1.1 200 OK", "Content-Length: 3", "Content-Length: 4") + "abcd",
	head("HTTP/1.0 200 OK", "Transfer-Encoding: chunked") + "3\r\nabc\r\n0\r\n\r\n",
	head("HTTP/1.1 200 OK", "X: a", " b", "Content-Length: 0"),
	head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked") + "3 \r\nabc\r\n0\r\n\r\n",
	head("HTTP/1.1  200 OK", "Content-Length: 0"),
	head("HTTP/1.1 200"),
	head("HTTP/1.1 200 OK", "CONNECTION: Close", "content-length: 1") + "x",
	head("HTTP/1.0 200 OK", "connection: Keep-Alive", "CONTENT-LENGTH: 1") + "x",
	head("HTTP/1.1 200 OK", "transfer-encoding: CHUNKED") + "1\r\nx\r\n0\r\n\r\n",
}
