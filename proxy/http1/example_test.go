package http1_test

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/drawbridge-proxy/drawbridge/proxy/http1"
)

// A request head is parsed in place; its body is framed by what the head
// says; what is left is the next request on the connection.
func ExampleParseRequest() {
	buf := []byte("POST /upload HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"5\r\nhello\r\n0\r\n\r\nGET /next HTTP/1.1\r\n")
	var req http1.Request
	n, err := http1.ParseRequest(buf, &req, http1.Limits{})
	if err != nil {
		fmt.Println("refused with", http1.StatusOf(err))
		return
	}
	fmt.Printf("%s %s host=%s chunked=%v\n", req.Method, req.Path, req.Host, req.Chunked)
	br := bufio.NewReader(strings.NewReader(string(buf[n:])))
	body, _ := io.ReadAll(http1.NewChunkedReader(br))
	rest, _ := io.ReadAll(br)
	fmt.Printf("body %q, then %q\n", body, rest)

	_, err = http1.ParseRequest([]byte("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"), &req, http1.Limits{})
	fmt.Println("CL.TE refused with", http1.StatusOf(err))
	// Output:
	// POST /upload host=example.com chunked=true
	// body "hello", then "GET /next HTTP/1.1\r\n"
	// CL.TE refused with 400
}
